/**
 * The JS half of a drag iteration: from the point coordinates alone, the small tensors the drag graphs
 * take as inputs (tracking window indices and restrictions, and for every cell tracking may land on,
 * the motion-supervision geometry there). Nothing here touches features.
 */
import {
  CANDIDATE_FLOATS,
  CANDIDATE_INTS,
  REFERENCE_INPUT,
  STEP_INPUT,
  checkConfig,
  patchSide,
  windowSide,
  type CandidateFloat,
  type CandidateInt,
  type DragGraphConfig,
} from './drag-config';
import { motionPatch, windowCols, windowRows } from './patch-geometry';
import { fastTrackingOverride, trackingWindow, type Point, type Window } from './tracking';

export type Feeds = Record<string, Float32Array | BigInt64Array>;

export interface DragPoints {
  /** Current handles (before this iteration's tracking). */
  readonly handles: readonly Point[];
  /** Handles at the start of the drag: where f0 is read. */
  readonly handlesInit: readonly Point[];
  readonly targets: readonly Point[];
}

/**
 * How this iteration tracks: `none` keeps the handles (the first iteration), `fast` is CLIPDrag's
 * fast point tracking, `plain` DragDiffusion's nearest neighbour.
 */
export type TrackingMode = 'none' | 'plain' | 'fast';

/** The reference's tracking for a variant: CLIPDrag tracks with FPT, DragDiffusion with plain tracking. */
export function trackingModeFor(config: DragGraphConfig, iteration: number): TrackingMode {
  if (iteration === 0) return 'none';
  return config.variant === 'clipdrag' ? 'fast' : 'plain';
}

/** Inputs of the reference graph, run once on F0: where f0 is read for each initial handle. */
export function referenceFeeds(config: DragGraphConfig, handlesInit: readonly Point[]): Feeds {
  checkConfig(config);
  const [height, width] = config.supervision;
  checkPoints('initial handle', handlesInit, config, true);
  const n = config.pairs;
  const pointRows = new BigInt64Array(n);
  const pointCols = new BigInt64Array(n);
  const windows = new BigInt64Array(n * 4);
  const norms = new Float32Array(n);
  handlesInit.forEach((p, i) => {
    pointRows[i] = BigInt(Math.trunc(p[0]));
    pointCols[i] = BigInt(Math.trunc(p[1]));
    const w = trackingWindow(p, config.motionRadius, height, width);
    windows.set([w.r1, windowRows(w), w.c1, windowCols(w)].map(BigInt), i * 4);
    norms[i] = 1 / (config.channels * windowRows(w) * windowCols(w));
  });
  return {
    [REFERENCE_INPUT.pointRows]: pointRows,
    [REFERENCE_INPUT.pointCols]: pointCols,
    [REFERENCE_INPUT.windows]: windows,
    [REFERENCE_INPUT.norms]: norms,
  };
}

/**
 * Inputs of one iteration of the step graph. The graph computes the feature distances in each pair's
 * (2r_p+1)² tracking window, applies `keep`/`bias` (distance·keep + bias: +inf excludes a cell, keep 0
 * pins it to a value), takes the row-major first minimum and reads the chosen cell's row of the
 * candidate tables: the new handle and its motion-supervision geometry.
 *
 * Window cells are laid out from the clipped window's corner (r1, c1), so padding sits after every
 * real cell and an all-+inf window picks (r1, c1), as the reference's argmin does.
 */
export function stepFeeds(config: DragGraphConfig, points: DragPoints, mode: TrackingMode): Feeds {
  checkConfig(config);
  const { handles, handlesInit, targets } = points;
  checkPoints('handle', handles, config, true);
  checkPoints('initial handle', handlesInit, config, true);
  checkPoints('target', targets, config, false);
  const [height, width] = config.supervision;
  const n = config.pairs;
  const side = windowSide(config);
  const cells = side * side;
  const trackRows = new BigInt64Array(n * side);
  const trackCols = new BigInt64Array(n * side);
  const keep = new Float32Array(n * cells).fill(1);
  const bias = new Float32Array(n * cells);
  const table = new CandidateTable(config, cells);

  for (let i = 0; i < n; i++) {
    const p = handles[i]!;
    const t = targets[i]!;
    const w = trackingWindow(p, config.trackingRadius, height, width);
    for (let k = 0; k < side; k++) {
      trackRows[i * side + k] = BigInt(Math.min(w.r1 + k, height - 1));
      trackCols[i * side + k] = BigInt(Math.min(w.c1 + k, width - 1));
    }
    const initWindow = trackingWindow(handlesInit[i]!, config.motionRadius, height, width);
    const base = i * cells;
    if (mode === 'none') {
      // Only cell 0 is allowed, and it carries the current handle itself (which may be fractional).
      bias.fill(Infinity, base + 1, base + cells);
      table.write(i, 0, p, t, initWindow);
      continue;
    }
    const override = mode === 'fast' ? fastTrackingOverride(p, t, w, config.trackingRadius) : null;
    for (let r = 0; r < side; r++) {
      for (let c = 0; c < side; c++) {
        const cell = r * side + c;
        if (r >= windowRows(w) || c >= windowCols(w)) {
          bias[base + cell] = Infinity;
          continue;
        }
        const value = override?.(r, c) ?? null;
        if (value === Infinity) bias[base + cell] = Infinity;
        else if (value !== null) {
          keep[base + cell] = 0;
          bias[base + cell] = value;
        }
        table.write(i, cell, [w.r1 + r, w.c1 + c], t, initWindow);
      }
    }
  }
  return {
    [STEP_INPUT.trackRows]: trackRows,
    [STEP_INPUT.trackCols]: trackCols,
    [STEP_INPUT.trackKeep]: keep,
    [STEP_INPUT.trackBias]: bias,
    [STEP_INPUT.candidates]: table.floats,
    [STEP_INPUT.candidateIndices]: table.ints,
  };
}

const FLOAT_COLUMN = Object.fromEntries(CANDIDATE_FLOATS.map((name, i) => [name, i])) as Record<CandidateFloat, number>;
const INT_COLUMN = Object.fromEntries(CANDIDATE_INTS.map((name, i) => [name, i])) as Record<CandidateInt, number>;

/** [N, cells, columns] tables of what motion supervision does when a pair's handle is at a cell. */
class CandidateTable {
  readonly floats: Float32Array;
  readonly ints: BigInt64Array;
  private readonly area: number;

  constructor(
    private readonly config: DragGraphConfig,
    private readonly cells: number,
  ) {
    this.floats = new Float32Array(config.pairs * cells * CANDIDATE_FLOATS.length);
    this.ints = new BigInt64Array(config.pairs * cells * CANDIDATE_INTS.length);
    this.area = patchSide(config) ** 2;
  }

  /** The motion supervision of pair `pair` with its handle at `q`; f0 (CLIPDrag) is the clipped window at the initial handle. */
  write(pair: number, cell: number, q: Point, t: Point, initWindow: Window): void {
    const { channels, motionRadius, supervision, variant } = this.config;
    const patch = motionPatch(q, t, motionRadius, supervision[0], supervision[1], variant);
    const f0Window = variant === 'clipdrag' ? initWindow : patch.window;
    const sampled = patch.rows.count * patch.cols.count;
    const differ = patch.rows.count !== windowRows(f0Window) || patch.cols.count !== windowCols(f0Window);
    const floats: Record<CandidateFloat, number> = {
      row: q[0],
      col: q[1],
      rowWeight0: patch.rows.weight0,
      rowWeight1: patch.rows.weight1,
      colWeight0: patch.cols.weight0,
      colWeight1: patch.cols.weight1,
      l1Scale: patch.active && !differ ? this.area / (channels * sampled) : 0,
      meanScale: patch.active && differ ? this.area : 0,
      sampleNorm: 1 / (channels * sampled),
      windowNorm: 1 / (channels * windowRows(patch.window) * windowCols(patch.window)),
    };
    const ints: Record<CandidateInt, number> = {
      rowStart: patch.rows.start,
      rowCount: patch.rows.count,
      colStart: patch.cols.start,
      colCount: patch.cols.count,
      windowRow: patch.window.r1,
      windowRows: windowRows(patch.window),
      windowCol: patch.window.c1,
      windowCols: windowCols(patch.window),
    };
    const at = pair * this.cells + cell;
    for (const name of CANDIDATE_FLOATS) this.floats[at * CANDIDATE_FLOATS.length + FLOAT_COLUMN[name]] = floats[name];
    for (const name of CANDIDATE_INTS) this.ints[at * CANDIDATE_INTS.length + INT_COLUMN[name]] = BigInt(ints[name]);
  }
}

function checkPoints(what: string, points: readonly Point[], config: DragGraphConfig, onMap: boolean): void {
  if (points.length !== config.pairs) throw new RangeError(`drag graph built for ${config.pairs} pairs, got ${points.length} ${what}s`);
  const [height, width] = config.supervision;
  points.forEach((p, i) => {
    if (!Number.isFinite(p[0]) || !Number.isFinite(p[1])) throw new RangeError(`${what} ${i} is not a finite point: [${p[0]}, ${p[1]}]`);
    const [r, c] = [Math.trunc(p[0]), Math.trunc(p[1])];
    if (onMap && (r < 0 || r >= height || c < 0 || c >= width)) {
      throw new RangeError(`${what} ${i} [${p[0]}, ${p[1]}] lies outside the ${height}x${width} supervision grid`);
    }
  });
}
