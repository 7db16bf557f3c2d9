import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import * as path from 'node:path';
import { describe, it } from 'node:test';
import {
  DEFAULT_EDIT_PARAMETERS,
  EDIT_PARAMETER_DEFINITIONS,
  EditSpecError,
  assertEditSpec,
  imagePathForSpec,
  isClipdragArtifactName,
  isEditableImageName,
  maskFileNameForImage,
  maskPathProblem,
  parseEditSpec,
  serializeEditSpec,
  specPathForImage,
  validateEditSpec,
  withDefaults,
  type EditSpec,
  type SpecIssue,
  type ValidateOptions,
} from '../../../src/shared/edit-spec';
import { inversionStepCount } from '../../../src/shared/edit-parameters';

const IMAGE = { width: 512, height: 384 };

function validSpec(): Record<string, unknown> {
  return {
    version: 1,
    mode: 'clipdrag',
    prompt: 'a photo of a cat',
    editPrompt: 'a photo of a smiling cat',
    points: [
      { handle: [100, 120], target: [140, 118.5] },
      { handle: [0, 383], target: [511, 0] },
    ],
    mask: { width: 512, height: 384, rle: [1000, 500, 512 * 384 - 1500] },
    parameters: { dragSteps: 40, fusionRule: 'projection' },
    model: 'stable-diffusion-v1-5/stable-diffusion-v1-5@main',
    clipModel: 'openai/clip-vit-base-patch16',
  };
}

/** Validates and returns the issues, failing the test if the spec was accepted. */
function issuesOf(value: unknown, options: ValidateOptions = { imageSize: IMAGE }): SpecIssue[] {
  const result = validateEditSpec(value, options);
  assert.equal(result.ok, false, 'expected the spec to be rejected');
  return result.ok ? [] : result.issues;
}

/** Exactly one issue, at `path`, whose message matches `pattern`. */
function assertSingleIssue(value: unknown, path: string, pattern: RegExp, options?: ValidateOptions): void {
  const issues = issuesOf(value, options);
  assert.equal(issues.length, 1, `expected one issue, got ${JSON.stringify(issues, null, 1)}`);
  assert.equal(issues[0]!.path, path);
  assert.match(issues[0]!.message, pattern);
}

function withChange(change: (spec: Record<string, unknown>) => void): Record<string, unknown> {
  const spec = validSpec();
  change(spec);
  return spec;
}

describe('edit spec validation', () => {
  it('accepts a complete spec and returns a clean copy', () => {
    const input = validSpec();
    const result = validateEditSpec(input, { imageSize: IMAGE, forRun: true });
    assert.ok(result.ok, JSON.stringify(result));
    assert.deepEqual(result.spec, input);
    assert.notEqual(result.spec, input);
    assert.notEqual(result.spec.points, input.points);
  });

  it('accepts a minimal draft: no mask, no parameters, no points, empty prompt', () => {
    const result = validateEditSpec({ version: 1, mode: 'drag', prompt: '', points: [] });
    assert.ok(result.ok);
    assert.deepEqual(result.spec, { version: 1, mode: 'drag', prompt: '', points: [] });
  });

  it('accepts a PNG mask path inside the folder', () => {
    const result = validateEditSpec(withChange((s) => (s.mask = 'masks/../cat.png.clipdrag-mask.png')), { imageSize: IMAGE });
    assert.ok(result.ok);
    assert.equal(result.spec.mask, 'masks/../cat.png.clipdrag-mask.png');
  });

  it('rejects values that are not objects', () => {
    for (const value of [null, 3, 'spec', [1, 2]]) {
      assertSingleIssue(value, '$', /expected an edit spec object/);
    }
  });

  it('reports every missing required field with what is expected', () => {
    const issues = issuesOf({});
    assert.deepEqual(
      issues.map((issue) => issue.path),
      ['$.version', '$.mode', '$.prompt', '$.points'],
    );
    assert.match(issues[0]!.message, /missing; expected 1/);
    assert.match(issues[1]!.message, /missing; expected one of "clipdrag", "drag", "freedrag", "text"/);
    assert.match(issues[2]!.message, /missing; expected a string describing the image/);
    assert.match(issues[3]!.message, /missing; expected an array of \{ "handle": \[x, y\], "target": \[x, y\] \}/);
  });

  it('rejects a newer version without listing other problems', () => {
    assertSingleIssue({ version: 2, whatever: true }, '$.version', /unsupported version 2: this CLIPDrag reads edit specs of version 1; update the CLIPDrag extension/);
  });

  it('rejects a malformed version alongside the other problems', () => {
    const issues = issuesOf(withChange((s) => (s.version = '1')));
    assert.deepEqual(issues, [{ path: '$.version', message: 'unsupported version "1"; expected 1' }]);
    assertSingleIssue(withChange((s) => (s.version = 0)), '$.version', /unsupported version 0; expected 1/);
  });

  it('rejects unknown fields at every level, suggesting the likely name', () => {
    assertSingleIssue(withChange((s) => (s.promt = 'x')), '$.promt', /unknown field \(did you mean "prompt"\?\); expected only version, mode, prompt/);
    assertSingleIssue(withChange((s) => (s.extra = 1)), '$.extra', /^unknown field; expected only/);
    assertSingleIssue(
      withChange((s) => ((s.points as Record<string, unknown>[])[1]!.weight = 2)),
      '$.points[1].weight',
      /unknown field; expected only handle, target/,
    );
    assertSingleIssue(withChange((s) => ((s.mask as Record<string, unknown>).channels = 1)), '$.mask.channels', /unknown field; expected only width, height, rle/);
    assertSingleIssue(
      withChange((s) => (s.parameters = { loraRnak: 8 })),
      '$.parameters.loraRnak',
      /unknown field \(did you mean "loraRank"\?\)/,
    );
    assertSingleIssue(withChange((s) => (s['odd key'] = 1)), '$["odd key"]', /unknown field/);
  });

  it('checks the types of mode, prompts and model ids', () => {
    assertSingleIssue(withChange((s) => (s.mode = 'sketch')), '$.mode', /expected one of "clipdrag", "drag", "freedrag", "text", got "sketch"/);
    assertSingleIssue(withChange((s) => (s.prompt = 42)), '$.prompt', /expected a string describing the image .*, got 42/);
    assertSingleIssue(withChange((s) => (s.editPrompt = null)), '$.editPrompt', /expected a string saying what the image should become, got null/);
    assertSingleIssue(withChange((s) => (s.model = '  ')), '$.model', /is not a model id; expected a Stable Diffusion 1.5 model/);
    assertSingleIssue(withChange((s) => (s.clipModel = ['a'])), '$.clipModel', /expected a CLIP ViT-B\/16 model: .*, got an array of 1/);
  });

  describe('points', () => {
    it('reports points outside the image with the allowed range', () => {
      assertSingleIssue(
        withChange((s) => ((s.points as { handle: number[] }[])[0]!.handle = [512, 10])),
        '$.points[0].handle[0]',
        /x = 512 is outside the image; expected 0 ≤ x ≤ 511 \(the image is 512 × 384 pixels\)/,
      );
      assertSingleIssue(
        withChange((s) => ((s.points as { target: number[] }[])[1]!.target = [10, -0.5])),
        '$.points[1].target[1]',
        /y = -0.5 is outside the image; expected 0 ≤ y ≤ 383/,
      );
    });

    it('without an image size, only rejects negative coordinates', () => {
      const far = withChange((s) => ((s.points as { handle: number[] }[])[0]!.handle = [5000, 5000]));
      assert.ok(validateEditSpec(far).ok);
      assertSingleIssue(withChange((s) => ((s.points as { handle: number[] }[])[0]!.handle = [-1, 0])), '$.points[0].handle[0]', /x = -1 is negative/, {});
    });

    it('reports unpaired points', () => {
      assertSingleIssue(
        withChange((s) => (s.points = [{ handle: [1, 2] }])),
        '$.points[0].target',
        /missing: this handle has no target; every pair needs both a handle and a target point \[x, y\]/,
      );
      assertSingleIssue(withChange((s) => (s.points = [{ target: [1, 2] }])), '$.points[0].handle', /missing: this target has no handle/);
      assertSingleIssue(
        withChange((s) => (s.points = [[1, 2], { handle: [1, 2], target: [3, 4] }])),
        '$.points[0]',
        /is a bare point \[x, y\]; expected a pair .*every handle needs its target/,
      );
    });

    it('reports NaN, Infinity and non-numbers in coordinates', () => {
      const issues = issuesOf(withChange((s) => (s.points = [{ handle: [NaN, Infinity], target: ['3', 4] }])));
      assert.deepEqual(
        issues.map((issue) => [issue.path, issue.message]),
        [
          ['$.points[0].handle[0]', 'x is NaN; expected a finite number of image pixels'],
          ['$.points[0].handle[1]', 'y is Infinity; expected a finite number of image pixels'],
          ['$.points[0].target[0]', 'expected x as a number of image pixels, got "3"'],
        ],
      );
    });

    it('reports points that are not [x, y] pairs', () => {
      assertSingleIssue(withChange((s) => (s.points = [{ handle: [1, 2, 3], target: [3, 4] }])), '$.points[0].handle', /expected a point \[x, y\] .*got an array of 3/);
      assertSingleIssue(withChange((s) => (s.points = [{ handle: { x: 1, y: 2 }, target: [3, 4] }])), '$.points[0].handle', /got an object/);
      assertSingleIssue(withChange((s) => (s.points = { handle: [1, 2] })), '$.points', /expected an array of/);
    });

    it('requires at least one pair for a run', () => {
      const draft = withChange((s) => (s.points = []));
      assert.ok(validateEditSpec(draft, { imageSize: IMAGE }).ok);
      assertSingleIssue(draft, '$.points', /no handle → target pairs; clipdrag mode drags points: place at least one/, { imageSize: IMAGE, forRun: true });
    });

    it('text mode runs with no points and both prompts; whitespace counts as empty', () => {
      const text = (change: (s: Record<string, unknown>) => void) =>
        withChange((s) => {
          s.mode = 'text';
          s.points = [];
          s.editPrompt = 'a cat with its head raised';
          change(s);
        });
      assert.ok(validateEditSpec(text(() => undefined), { imageSize: IMAGE, forRun: true }).ok);
      assertSingleIssue(text((s) => (s.points = [{ handle: [1, 2], target: [3, 4] }])), '$.points', /text mode edits by the prompts alone and takes no points, got 1 pair/, { imageSize: IMAGE, forRun: true });
      assertSingleIssue(text((s) => (s.editPrompt = ' \t')), '$.editPrompt', /is empty; text mode needs an edit prompt/, { imageSize: IMAGE, forRun: true });
      assertSingleIssue(text((s) => delete s.editPrompt), '$.editPrompt', /missing; text mode needs an edit prompt/, { imageSize: IMAGE, forRun: true });
      assertSingleIssue(text((s) => (s.prompt = '')), '$.prompt', /is empty; text mode needs a prompt describing the image/, { imageSize: IMAGE, forRun: true });
      // A draft may still lack them.
      assert.ok(validateEditSpec(text((s) => (s.prompt = '')), { imageSize: IMAGE }).ok);
    });

    it('the drag modes run with empty prompts but need points', () => {
      for (const mode of ['clipdrag', 'drag', 'freedrag']) {
        assert.ok(validateEditSpec(withChange((s) => ((s.mode = mode), (s.prompt = ' '), delete s.editPrompt)), { imageSize: IMAGE, forRun: true }).ok, mode);
        assertSingleIssue(withChange((s) => ((s.mode = mode), (s.points = []))), '$.points', new RegExp(`${mode} mode drags points`), { imageSize: IMAGE, forRun: true });
      }
    });
  });

  describe('mask', () => {
    it('reports an inline mask whose size differs from the image', () => {
      assertSingleIssue(
        withChange((s) => (s.mask = { width: 256, height: 192, rle: [256 * 192] })),
        '$.mask',
        /is 256 × 192, but the image is 512 × 384; the mask must have the image's size/,
      );
    });

    it('reports runs that do not add up, negative or fractional runs', () => {
      assertSingleIssue(withChange((s) => (s.mask = { width: 512, height: 384, rle: [10, 10] })), '$.mask.rle', /the runs add up to 20 pixels, but width × height is 512 × 384 = 196608/);
      const issues = issuesOf(withChange((s) => (s.mask = { width: 512, height: 384, rle: [1.5, -2, 'x'] })));
      assert.deepEqual(
        issues.map((issue) => issue.path),
        ['$.mask.rle[0]', '$.mask.rle[1]', '$.mask.rle[2]'],
      );
      assert.match(issues[0]!.message, /expected a run length \(an integer ≥ 0\), got 1.5/);
    });

    it('reports missing or wrong mask dimensions', () => {
      const issues = issuesOf(withChange((s) => (s.mask = { height: 0, rle: [] })));
      assert.deepEqual(
        issues.map((issue) => [issue.path, issue.message]),
        [
          ['$.mask.width', "missing; expected the mask width in pixels (the image's width)"],
          ['$.mask.height', "expected a positive integer (the image's height in pixels), got 0"],
        ],
      );
    });

    it('rejects mask paths that leave the folder, are absolute, use backslashes or are not PNG', () => {
      const cases: [string, RegExp][] = [
        ['../other/mask.png', /leaves the image's folder/],
        ['a/../../mask.png', /leaves the image's folder/],
        ['/etc/mask.png', /is absolute/],
        ['C:/masks/mask.png', /is absolute/],
        ['masks\\mask.png', /uses "\\"/],
        ['mask.jpg', /is not a .png file/],
        ['', /is empty/],
      ];
      for (const [path, pattern] of cases) {
        assertSingleIssue(withChange((s) => (s.mask = path)), '$.mask', pattern);
        assert.match(maskPathProblem(path) ?? '', pattern);
      }
      assertSingleIssue(withChange((s) => (s.mask = 7)), '$.mask', /expected a PNG file path relative to the spec or \{ "width", "height", "rle": \[runs\] \}, got 7/);
    });
  });

  describe('parameters', () => {
    it('accepts every default value', () => {
      const result = validateEditSpec(withChange((s) => (s.parameters = { ...DEFAULT_EDIT_PARAMETERS })), { imageSize: IMAGE });
      assert.ok(result.ok);
      assert.deepEqual(result.spec.parameters, DEFAULT_EDIT_PARAMETERS);
    });

    it('reports out-of-range values with the range', () => {
      assertSingleIssue(withChange((s) => (s.parameters = { loraRank: 0 })), '$.parameters.loraRank', /expected an integer from 1 to 128 \(LoRA rank\), got 0/);
      assertSingleIssue(withChange((s) => (s.parameters = { fusionWeight: 1.5 })), '$.parameters.fusionWeight', /expected a number from 0 to 1 .*got 1.5/);
      assertSingleIssue(withChange((s) => (s.parameters = { latentLearningRate: 0 })), '$.parameters.latentLearningRate', /expected a number > 0 and ≤ 1 .*got 0/);
      assertSingleIssue(withChange((s) => (s.parameters = { seed: -1 })), '$.parameters.seed', /expected an integer from 0 to 4294967295/);
    });

    it('reports wrong types, fractions for integers, NaN and Infinity', () => {
      assertSingleIssue(withChange((s) => (s.parameters = { dragSteps: '80' })), '$.parameters.dragSteps', /expected an integer from 0 to 10000 \(maximum drag iterations\), got "80"/);
      assertSingleIssue(withChange((s) => (s.parameters = { motionRadius: 1.5 })), '$.parameters.motionRadius', /expected an integer from 0 to 32 .*got 1.5/);
      assertSingleIssue(withChange((s) => (s.parameters = { maskWeight: NaN })), '$.parameters.maskWeight', /NaN is not a finite number; expected a number from 0 to 1000/);
      assertSingleIssue(withChange((s) => (s.parameters = { clipGuidanceWeight: Infinity })), '$.parameters.clipGuidanceWeight', /Infinity is not a finite number/);
      assertSingleIssue(withChange((s) => (s.parameters = { fusionRule: 'average' })), '$.parameters.fusionRule', /expected one of "official", "projection" .*got "average"/);
      assertSingleIssue(withChange((s) => (s.parameters = [1])), '$.parameters', /expected an object of parameters/);
    });

    it('checks combinations: at least one inversion step, masa start within the schedule', () => {
      assertSingleIssue(
        withChange((s) => (s.parameters = { inversionStrength: 0.009 })),
        '$.parameters.inversionStrength',
        /round\(0.009 × 50 steps\) = 0 inversion steps; expected a strength of at least 0.0100 with 50 steps/,
      );
      assertSingleIssue(withChange((s) => (s.parameters = { inferenceSteps: 20, masaStartStep: 30 })), '$.parameters.masaStartStep', /30 is after the last of the 20 inference steps/);
    });

    it('counts inversion steps with round-half-to-even like Python', () => {
      assert.equal(inversionStepCount({ inferenceSteps: 50, inversionStrength: 0.7 }), 35);
      assert.equal(inversionStepCount({ inferenceSteps: 2, inversionStrength: 0.25 }), 0);
      assert.equal(inversionStepCount({ inferenceSteps: 2, inversionStrength: 0.75 }), 2);
      assert.equal(inversionStepCount({ inferenceSteps: 10, inversionStrength: 0.35 }), 4);
    });
  });

  it('collects problems from several fields in one pass', () => {
    const issues = issuesOf({ version: 1, mode: 'x', prompt: 1, points: [{ handle: [1, 1] }], parameters: { seed: 1.5 } });
    assert.deepEqual(
      issues.map((issue) => issue.path),
      ['$.mode', '$.prompt', '$.points[0].target', '$.parameters.seed'],
    );
  });

  it('caps a flood of problems with a summary', () => {
    const points = Array.from({ length: 80 }, () => ({ handle: [-1, 0], target: [0, 0] }));
    const issues = issuesOf(withChange((s) => (s.points = points)));
    assert.equal(issues.length, 51);
    assert.deepEqual(issues[50], { path: '$', message: '30 more problems not listed; fix the ones above first' });
  });
});

describe('edit spec parsing and errors', () => {
  it('parses JSON text with a BOM', () => {
    const result = parseEditSpec(`\ufeff${JSON.stringify(validSpec())}`, { imageSize: IMAGE });
    assert.ok(result.ok);
  });

  it('reports a JSON syntax error at $', () => {
    const result = parseEditSpec('{ "version": 1, "points": [NaN] }');
    assert.equal(result.ok, false);
    if (!result.ok) {
      assert.equal(result.issues.length, 1);
      assert.equal(result.issues[0]!.path, '$');
      assert.match(result.issues[0]!.message, /^not valid JSON \(.+\); fix the syntax/);
    }
  });

  it('throws an EditSpecError that lists every issue with its path and source', () => {
    assert.throws(
      () => assertEditSpec({ version: 1, mode: 'drag', prompt: '', points: [], parameters: { seed: 'x', loraSteps: -1 } }, {}, 'cat.png.clipdrag-edit.json'),
      (error: unknown) => {
        assert.ok(error instanceof EditSpecError);
        assert.equal(error.issues.length, 2);
        assert.equal(
          error.message,
          [
            'Edit spec cat.png.clipdrag-edit.json is not valid (2 problems):',
            '  $.parameters.loraSteps: expected an integer from 0 to 2000 (LoRA fine-tuning steps (0 disables LoRA)), got -1',
            '  $.parameters.seed: expected an integer from 0 to 4294967295 (random seed), got "x"',
          ].join('\n'),
        );
        return true;
      },
    );
  });
});

describe('defaults', () => {
  it('match the official CLIPDrag UI defaults', () => {
    assert.deepEqual(DEFAULT_EDIT_PARAMETERS, {
      inferenceSteps: 50,
      inversionStrength: 0.7,
      dragSteps: 800,
      latentLearningRate: 0.01,
      motionRadius: 1,
      trackingRadius: 3,
      maskWeight: 0.1,
      fusionWeight: 0.7,
      fusionRule: 'official',
      clipGuidanceWeight: 300,
      loraRank: 16,
      loraSteps: 80,
      loraLearningRate: 5e-4,
      loraBatchSize: 4,
      masaStartStep: 0,
      masaStartLayer: 10,
      freedragExpectedLoss: 1,
      freedragMaxDistance: 5,
      seed: 42,
      previewInterval: 10,
    });
  });

  it('per mode: DragDiffusion\'s 80 iterations, FreeDrag\'s UI defaults, text mode\'s 100; given values still win', () => {
    const bare = (mode: 'clipdrag' | 'drag' | 'freedrag' | 'text') => withDefaults({ version: 1, mode, prompt: '', points: [] }).parameters;
    assert.equal(bare('clipdrag').dragSteps, 800);
    assert.equal(bare('drag').dragSteps, 80);
    assert.equal(bare('text').dragSteps, 100);
    assert.deepEqual(
      { ...bare('freedrag') },
      { ...DEFAULT_EDIT_PARAMETERS, dragSteps: 300, motionRadius: 4, maskWeight: 10, loraSteps: 200, loraLearningRate: 2e-4 },
    );
    assert.equal(withDefaults({ version: 1, mode: 'drag', prompt: '', points: [], parameters: { dragSteps: 40 } }).parameters.dragSteps, 40);
  });

  it('every default lies in its own range', () => {
    for (const [name, definition] of Object.entries(EDIT_PARAMETER_DEFINITIONS)) {
      const result = validateEditSpec({ version: 1, mode: 'drag', prompt: '', points: [], parameters: { [name]: definition.default } });
      assert.ok(result.ok, name);
    }
  });

  it('withDefaults fills missing parameters and keeps given ones', () => {
    const spec = assertEditSpec(validSpec());
    const resolved = withDefaults(spec);
    assert.equal(resolved.parameters.dragSteps, 40);
    assert.equal(resolved.parameters.fusionRule, 'projection');
    assert.equal(resolved.parameters.loraRank, 16);
    assert.equal(resolved.parameters.seed, 42);
    assert.equal(Object.keys(resolved.parameters).length, Object.keys(DEFAULT_EDIT_PARAMETERS).length);
    assert.equal(resolved.prompt, spec.prompt);
    const bare = withDefaults({ version: 1, mode: 'clipdrag', prompt: '', points: [] });
    assert.deepEqual(bare.parameters, DEFAULT_EDIT_PARAMETERS);
    assert.notEqual(bare.parameters, DEFAULT_EDIT_PARAMETERS);
  });
});

describe('serialisation', () => {
  it('writes a fixed field order with number arrays on one line and round-trips', () => {
    const spec = assertEditSpec({ ...validSpec(), mask: { width: 2, height: 1, rle: [1, 1] } });
    const shuffled = Object.fromEntries(Object.entries(spec).reverse()) as unknown as EditSpec;
    const text = serializeEditSpec(shuffled);
    assert.equal(text, serializeEditSpec(spec));
    assert.ok(text.endsWith('}\n'));
    assert.match(text, /^\{\n {2}"version": 1,\n {2}"mode": "clipdrag",\n {2}"prompt"/);
    assert.match(text, /"handle": \[100, 120\],\n\s+"target": \[140, 118.5\]/);
    assert.match(text, /"rle": \[1, 1\]/);
    const reparsed = parseEditSpec(text);
    assert.ok(reparsed.ok);
    assert.deepEqual(reparsed.spec, spec);
  });

  it('keeps number-like strings in prompts intact', () => {
    const spec = assertEditSpec({ version: 1, mode: 'clipdrag', prompt: '[1, 2]', points: [] });
    const reparsed = parseEditSpec(serializeEditSpec(spec));
    assert.ok(reparsed.ok);
    assert.equal(reparsed.spec.prompt, '[1, 2]');
  });
});

describe('file naming', () => {
  it('maps an image to its spec next to it and back', () => {
    assert.equal(specPathForImage('photos/cat.png'), 'photos/cat.png.clipdrag-edit.json');
    assert.equal(specPathForImage('C:\\photos\\cat.JPG'), 'C:\\photos\\cat.JPG.clipdrag-edit.json');
    assert.equal(imagePathForSpec('photos/cat.png.clipdrag-edit.json'), 'photos/cat.png');
    assert.equal(imagePathForSpec('C:\\photos\\cat.JPG.clipdrag-edit.json'), 'C:\\photos\\cat.JPG');
    assert.equal(imagePathForSpec('photos/cat.clipdrag-edit.json'), undefined);
    assert.equal(imagePathForSpec('photos/cat.png.json'), undefined);
    assert.equal(imagePathForSpec('photos/.png.clipdrag-edit.json'), undefined);
  });

  it('keeps cat.png and cat.jpg apart', () => {
    assert.notEqual(specPathForImage('cat.png'), specPathForImage('cat.jpg'));
  });

  it('recognises editable images and CLIPDrag artifacts', () => {
    for (const name of ['a.png', 'b.JPG', 'c.jpeg', 'd.webp']) assert.ok(isEditableImageName(name), name);
    for (const name of ['a.gif', 'png', '.png', 'a.png.txt']) assert.ok(!isEditableImageName(name), name);
    for (const name of ['cat.clipdrag.png', 'cat.clipdrag-12.json', 'cat.png.clipdrag-edit.json', 'cat.png.clipdrag-mask.png']) {
      assert.ok(isClipdragArtifactName(name), name);
    }
    for (const name of ['cat.png', 'clipdrag.png', 'cat.clipdrag-x.png']) assert.ok(!isClipdragArtifactName(name), name);
    assert.equal(maskFileNameForImage('photos/cat.png'), 'cat.png.clipdrag-mask.png');
  });
});

describe('docs/edit-spec.md', () => {
  const doc = readFileSync(path.join(__dirname, '..', '..', '..', 'docs', 'edit-spec.md'), 'utf8');

  it('shows an example that validates against a 512 × 384 image', () => {
    const example = /```json\n([\s\S]*?)\n```/.exec(doc);
    assert.ok(example, 'the doc has a json example');
    const result = parseEditSpec(example[1]!, { imageSize: { width: 512, height: 384 }, forRun: true });
    assert.ok(result.ok, JSON.stringify(result));
  });

  it('lists every parameter with its default', () => {
    for (const [name, definition] of Object.entries(EDIT_PARAMETER_DEFINITIONS)) {
      const row = new RegExp(`^\\| \`${name}\` \\| ([^|]+) \\|`, 'm').exec(doc);
      assert.ok(row, `${name} has a row`);
      const shown = row[1]!.trim().replace(/"/g, '').replace(/`/g, '');
      assert.equal(typeof definition.default === 'number' ? Number(shown) : shown, definition.default, name);
    }
  });
});
