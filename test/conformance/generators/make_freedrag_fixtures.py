#!/usr/bin/python3
"""Golden tensors for FreeDrag's dragging steps and for both GLMS fusion rules.

FreeDrag's values come from its authors' own functions (LPengYang/FreeDrag,
FreeDrag--diffusion--version/utils/freedrag_utils.py), imported from a checkout whose path is given on the
command line; nothing of that code is kept in this repository. The GLMS values come from the official
CLIPDrag rule and from the projection variant's formula, both written out below.

Rerun (Debian's PyTorch: apt-get install python3-torch python3-numpy):

    git clone https://github.com/LPengYang/FreeDrag <checkout>
    /usr/bin/python3 test/conformance/generators/make_freedrag_fixtures.py \\
        --freedrag <checkout>/FreeDrag--diffusion--version/utils --out test/fixtures

It writes golden/freedrag_*.safetensors and golden/glms_rules.safetensors and replaces those cases in
golden/index.json (other cases are left as they are). Float32 on the CPU, one thread, fixed seeds.
"""
import argparse
import importlib.util
import json
import os
import struct
import subprocess
import sys
import types

import torch
import torch.nn.functional as F

FREEDRAG_REPO = "LPengYang/FreeDrag"
FREEDRAG_FILE = "FreeDrag--diffusion--version/utils/freedrag_utils.py"
CLIPDRAG_REPO = "HKUST-LongGroup/CLIPDrag 8fa32ffba453db5b78e234d60bc0a99ef256a092 (HEAD)"


def load_freedrag(utils_dir):
    # freedrag_utils imports torchvision.transforms at module level but never uses it; Debian's PyTorch
    # ships without torchvision, so an empty module stands in for the import.
    if importlib.util.find_spec("torchvision") is None:
        tv = types.ModuleType("torchvision")
        tv.transforms = types.ModuleType("torchvision.transforms")
        sys.modules["torchvision"] = tv
        sys.modules["torchvision.transforms"] = tv.transforms
    path = os.path.join(utils_dir, "freedrag_utils.py")
    spec = importlib.util.spec_from_file_location("freedrag_utils", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    commit = "unknown"
    try:
        commit = subprocess.run(["git", "-C", utils_dir, "rev-parse", "HEAD"], capture_output=True, text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        pass
    return module, commit


def write_safetensors(path, tensors):
    header, blobs, offset = {}, [], 0
    for name, t in tensors.items():
        t = t.detach().contiguous()
        dtype = {torch.float32: "F32", torch.int64: "I64"}[t.dtype]
        data = t.numpy().tobytes()
        header[name] = {"dtype": dtype, "shape": list(t.shape), "data_offsets": [offset, offset + len(data)]}
        blobs.append(data)
        offset += len(data)
    text = json.dumps(header, separators=(",", ":")).encode()
    text += b" " * ((8 - len(text) % 8) % 8)
    with open(path + ".tmp", "wb") as f:
        f.write(struct.pack("<Q", len(text)))
        f.write(text)
        for b in blobs:
            f.write(b)
    os.replace(path + ".tmp", path)


def describe(tensors, meanings, tolerance=None):
    out = {}
    for name, t in tensors.items():
        key = name.split(".", 1)[1] if name[0].isdigit() else name
        entry = {"shape": list(t.shape), "dtype": "F32" if t.dtype == torch.float32 else "I64", "meaning": meanings.get(key, key)}
        if tolerance is not None:
            entry["tolerance"] = tolerance
        out[name] = entry
    return out


def upsample(feature, size):
    # DragPipeline.forward_unet_features: F.interpolate(feat, (sup_res_h, sup_res_w), mode='bilinear').
    return F.interpolate(feature, size, mode="bilinear")


def case_features(fd, ref):
    g = torch.Generator().manual_seed(1)
    lat = torch.randn(1, 8, 8, 10, generator=g)
    sup = upsample(lat, (16, 20))
    positions = torch.tensor([[3.0, 4.0], [5.25, 7.5], [10.75, 2.125], [7.5, 15.9], [0.0, 0.0], [14.5, 18.25]])
    win = fd.get_position_for_feature(4)
    center = torch.tensor([8.4, 9.7])
    inputs = {"feature": lat, "positions": positions, "center": center}
    outputs = {"features": fd.get_features_plus(sup, positions), "window_features": fd.get_features_plus(sup, center + win)}
    return {
        "name": "freedrag_features",
        "reference": [ref("get_features_plus, get_position_for_feature"), {"repo": "LPengYang/FreeDrag", "file": "FreeDrag--diffusion--version/drag_pipeline.py", "function": "forward_unet_features (bilinear F.interpolate to the supervision size)"}],
        "settings": {"supervision": [16, 20], "win_r": 4, "positions": "[row, col] on the supervision grid, inside [0, H-1) x [0, W-1)"},
        "tensors": (inputs, outputs),
        "meanings": {"feature": "UNet feature at latent resolution [1, C, h, w]", "positions": "[N, 2] sample points", "center": "window centre",
                     "features": "get_features_plus(upsampled, positions) [N, C]", "window_features": "get_features_plus at centre + get_position_for_feature(4) [81, C]"},
    }


def case_motion(fd, ref):
    g = torch.Generator().manual_seed(2)
    lat = torch.randn(1, 6, 8, 8, generator=g, requires_grad=True)
    sup = upsample(lat, (16, 16))
    win = fd.get_position_for_feature(4)
    currents = torch.tensor([[6.3, 7.8], [9.0, 5.5]])
    templates = torch.randn(2, 81, 6, generator=g)
    l1 = torch.nn.L1Loss()
    losses = torch.stack([l1(fd.get_features_plus(sup, currents[k] + win), templates[k]) for k in range(2)])
    x_prev = torch.randn(1, 4, 8, 8, generator=g, requires_grad=True)
    x_prev_0 = torch.randn(1, 4, 8, 8, generator=g)
    mask = torch.zeros(1, 1, 8, 8)
    mask[:, :, 2:6, 3:7] = 1
    lam = 10.0
    mask_loss = ((x_prev - x_prev_0) * (1.0 - mask)).abs().mean()
    loss = losses.sum() + lam * mask_loss
    loss.backward()
    inputs = {"feature": lat.detach(), "currents": currents, "templates": templates, "x_prev": x_prev.detach(), "x_prev_0": x_prev_0, "interp_mask": mask}
    outputs = {"loss_supervised": losses.detach(), "mask_loss": mask_loss.detach().reshape(1), "loss": loss.detach().reshape(1),
               "grad_feature": lat.grad, "grad_x_prev": x_prev.grad}
    return {
        "name": "freedrag_motion_supervision",
        "reference": [ref("freedrag_update (loss_supervised, loss_mask, loss)")],
        "settings": {"supervision": [16, 16], "win_r": 4, "lam": lam,
                     "loss": "sum_k L1Loss(get_features_plus(F1, current_k + window), template_k) + lam * mean(|x_prev - x_prev_0| * (1 - interp_mask))"},
        "tensors": (inputs, outputs),
        "meanings": {"feature": "F1 at latent resolution", "currents": "[N, 2] current targets (the template positions)", "templates": "[N, 81, C] F_template",
                     "loss_supervised": "[N] per-pair L1", "grad_feature": "d loss / d F1 (latent resolution)", "grad_x_prev": "d loss / d x_prev"},
    }


def case_line_search(fd, ref):
    g = torch.Generator().manual_seed(3)
    sup = upsample(torch.randn(1, 6, 12, 12, generator=g), (24, 24))
    win = fd.get_position_for_feature(4)
    l_expected, d_max = 1.0, 5.0
    threshold_l = 0.5 * l_expected
    subs, inputs, outputs = [], {}, {}
    # (tag, current, target, loss_initial, loss_end): the three branches of get_each_point.
    plans = [
        ("search", [6.0, 6.0], [16.0, 18.0], 0.9, 0.3),
        ("search_near", [12.0, 12.5], [14.0, 13.0], 0.9, 0.1),
        ("hold", [8.0, 9.0], [15.0, 15.0], 0.9, 0.7),
        ("backtrack", [11.0, 10.0], [17.0, 16.0], 0.6, 0.8),
        ("backtrack_far", [9.5, 8.25], [18.0, 17.0], 0.4, 0.4),
    ]
    for i, (tag, current, target, loss_ini, loss_end) in enumerate(plans):
        current, target = torch.tensor(current), torch.tensor(target)
        template = fd.get_features_plus(sup, current + win) + 0.3 * torch.randn(81, 6, generator=g)
        best = fd.get_each_point(current.clone(), target, l_expected, sup, d_max, template, torch.tensor(loss_ini), torch.tensor(loss_end), win, threshold_l)
        subs.append({"index": i, "tag": tag, "loss_initial": loss_ini, "loss_end": loss_end})
        inputs.update({f"{i}.current": current, f"{i}.target": target, f"{i}.template": template})
        outputs[f"{i}.best"] = best.reshape(2)
    inputs["feature_map"] = sup
    return {
        "name": "freedrag_line_search",
        "reference": [ref("get_each_point (linear search along handle -> target, backtracking)")],
        "settings": {"l_expected": l_expected, "d_max": d_max, "threshold_l": threshold_l, "win_r": 4, "interval_number": 10, "subcases": subs},
        "tensors": (inputs, outputs),
        "meanings": {"feature_map": "current_F at the supervision size [1, C, H, W]", "current": "current target (template position)", "target": "final target",
                     "template": "F_template [81, C]", "best": "the next template position"},
    }


def case_template(fd, ref):
    g = torch.Generator().manual_seed(4)
    l_expected = 1.0
    threshold_d, threshold_l = 2, 0.5 * l_expected
    aa = torch.log(torch.tensor(9.0)) / (0.6 * l_expected)
    bb = 0.2 * l_expected
    current = torch.tensor([[5.0, 5.0], [9.0, 9.5], [3.0, 4.0], [12.0, 2.0]])
    target = torch.tensor([[5.5, 6.0], [15.0, 9.5], [3.5, 4.0], [12.0, 3.0]])
    loss_end = torch.tensor([0.2, 0.3, 0.9, 0.45])
    signs = fd.update_signs(torch.zeros(4), current, target, loss_end, threshold_d, threshold_l)
    templates = torch.randn(4, 81, 6, generator=g)
    features = torch.randn(4, 81, 6, generator=g)
    xishu = torch.stack([torch.tensor(1.0) if signs[k] == 1 else fd.get_xishu(loss_end[k], aa, bb) for k in range(4)])
    updated = torch.stack([xishu[k] * features[k] + (1 - xishu[k]) * templates[k] for k in range(4)])
    inputs = {"current": current, "target": target, "loss_end": loss_end, "templates": templates, "features": features}
    outputs = {"signs": signs.float(), "xishu": xishu.float(), "templates_updated": updated}
    return {
        "name": "freedrag_template_update",
        "reference": [ref("update_signs, get_xishu, freedrag_update (F_template update)")],
        "settings": {"l_expected": l_expected, "threshold_d": threshold_d, "threshold_l": threshold_l, "a": float(aa), "b": bb},
        "tensors": (inputs, outputs),
        "meanings": {"signs": "1 where a pair has arrived (distance < 2 and loss_end <= threshold_l)", "xishu": "template blend weight", "templates_updated": "F_template after the stage"},
    }


def official_rule(g_l, g_g, cof):
    # CLIPDrag HEAD utils/drag_utils.py, the fusion block of drag_diffusion_update.
    c = torch.cosine_similarity(g_g.view(1, -1), g_l.view(1, -1))
    s = torch.sqrt(1 - c ** 2)
    return (g_l + cof * s * g_g if c >= 0 else g_l + cof * c * g_g), c


def projection_rule(g_l, g_g, cof):
    # The projection variant: G_g split along u = G_l/|G_l|; the perpendicular part is added when the gradients
    # agree (cos >= 0), the parallel part when they conflict.
    c = torch.cosine_similarity(g_g.view(1, -1), g_l.view(1, -1))
    gl, gg = g_l.double(), g_g.double()
    parallel = (gg * gl).sum() / (gl * gl).sum() * gl
    part = gg - parallel if c >= 0 else parallel
    return (gl + cof * part).float(), c


def case_glms():
    g = torch.Generator().manual_seed(5)
    subs, inputs, outputs = [], {}, {}
    for i, (tag, mix) in enumerate([("agreement", 0.8), ("conflict", -0.8), ("near_orthogonal", 0.05), ("strong_conflict", -2.0)]):
        g_l = torch.randn(1, 4, 8, 8, generator=g)
        g_g = mix * g_l + torch.randn(1, 4, 8, 8, generator=g)
        cof = 0.7 if i % 2 == 0 else 0.3
        official, c = official_rule(g_l, g_g, cof)
        projected, _ = projection_rule(g_l, g_g, cof)
        subs.append({"index": i, "tag": tag, "fuse_cof": cof, "cosine": float(c)})
        inputs.update({f"{i}.G_l": g_l, f"{i}.G_g": g_g})
        outputs.update({f"{i}.cosine": c.reshape(1), f"{i}.G_official": official, f"{i}.G_projection": projected})
    return {
        "name": "glms_rules",
        "reference": [{"repo": CLIPDRAG_REPO, "file": "utils/drag_utils.py", "function": "drag_diffusion_update (gradient fusion block): the official rule"},
                      {"repo": "this repository", "file": "src/sidecar/pipeline/drag/glms.ts", "function": "the projection variant (an interpretation of the paper's prose)"}],
        "settings": {"official": "G_l + cof*sqrt(1-c^2)*G_g if c >= 0 else G_l + cof*c*G_g",
                     "projection": "u = G_l/|G_l|; G_g_par = (G_g.u)u; G_l + cof*(G_g - G_g_par) if c >= 0 else G_l + cof*G_g_par",
                     "subcases": subs},
        "tensors": (inputs, outputs),
        "meanings": {"G_l": "local gradient", "G_g": "global gradient", "cosine": "cos(G_g, G_l)", "G_official": "fused by the official rule", "G_projection": "fused by the projection variant"},
    }


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--freedrag", required=True, help="FreeDrag--diffusion--version/utils folder of a FreeDrag checkout")
    parser.add_argument("--out", required=True, help="fixture folder (holds golden/index.json)")
    args = parser.parse_args()
    torch.set_num_threads(1)
    fd, commit = load_freedrag(args.freedrag)

    def ref(function):
        return {"repo": f"{FREEDRAG_REPO} {commit}", "file": FREEDRAG_FILE, "function": function}

    index_path = os.path.join(args.out, "golden", "index.json")
    with open(index_path) as f:
        index = json.load(f)
    built = [case_features(fd, ref), case_motion(fd, ref), case_line_search(fd, ref), case_template(fd, ref), case_glms()]
    names = {c["name"] for c in built}
    index["cases"] = [c for c in index["cases"] if c["name"] not in names]
    for case in built:
        inputs, outputs = case["tensors"]
        file = f"golden/{case['name']}.safetensors"
        write_safetensors(os.path.join(args.out, file), {**inputs, **outputs})
        index["cases"].append({
            "name": case["name"], "item": "modes", "file": file, "model": "none", "reference": case["reference"], "settings": case["settings"],
            "inputs": describe(inputs, case["meanings"]),
            # The drag cases' tolerances: 1e-6 relative L2 for float32 arithmetic, 0 for positions and signs.
            "outputs": describe(outputs, case["meanings"], 1e-6),
        })
        print(f"wrote {file}")
    index.setdefault("references", {})["freedrag"] = f"{FREEDRAG_REPO} {commit}"
    with open(index_path + ".tmp", "w") as f:
        json.dump(index, f, indent=1)
        f.write("\n")
    os.replace(index_path + ".tmp", index_path)


if __name__ == "__main__":
    main()
