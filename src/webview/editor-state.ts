// What the editor page shows of its document: the points with their selection, a handle waiting for its target, and
// a point being dragged. Held in one Store; the changes below are pure, so each returns a new state.
import type { ImagePoint, PointPair } from '../shared/edit-spec';
import type { DocumentView } from '../shared/webview-messages';
import type { PointRef } from './point-hits';

export interface EditorState {
  /** The document as the extension last sent it. */
  readonly view: DocumentView | undefined;
  /** The points as listed: the document's, plus this page's edits not yet confirmed. */
  readonly points: readonly PointPair[];
  readonly selected: PointRef | undefined;
  /** A handle placed with the Points tool, waiting for its target. */
  readonly pending: ImagePoint | undefined;
  /** A point being dragged: drawn on the canvas as it moves, listed where it lands. */
  readonly moving: { readonly ref: PointRef; readonly to: ImagePoint } | undefined;
}

export const INITIAL_EDITOR_STATE: EditorState = { view: undefined, points: [], selected: undefined, pending: undefined, moving: undefined };

/** A document from the extension: its points replace the page's (and a drag's preview), a selection past them is dropped. */
export function showDocument(state: EditorState, view: DocumentView): EditorState {
  const points = view.points.map(copyPair);
  const selected = state.selected && state.selected.index >= points.length ? undefined : state.selected;
  return { ...state, view, points, selected, moving: undefined };
}

/** Back to the document's points: the extension refused an edit, or a drag was cancelled. */
export function revertToDocument(state: EditorState): EditorState {
  return { ...state, points: state.view ? state.view.points.map(copyPair) : [], moving: undefined };
}

export function addPair(state: EditorState, pair: PointPair): EditorState {
  const points = [...state.points, pair];
  return { ...state, points, selected: { index: points.length - 1, end: 'target' } };
}

export function movePoint(state: EditorState, ref: PointRef, to: ImagePoint): EditorState {
  return { ...state, points: state.points.map((p, i) => (i === ref.index ? { ...p, [ref.end]: to } : p)), moving: undefined };
}

export function deletePair(state: EditorState, index: number): EditorState {
  return { ...state, points: state.points.filter((_, i) => i !== index), selected: undefined };
}

/** The points as drawn on the canvas: the listed ones with the dragged point where the pointer is. */
export function drawnPoints(state: EditorState): readonly PointPair[] {
  const { moving } = state;
  if (!moving) return state.points;
  return state.points.map((p, i) => (i === moving.ref.index ? { ...p, [moving.ref.end]: moving.to } : p));
}

function copyPair(pair: PointPair): PointPair {
  return { handle: [pair.handle[0], pair.handle[1]], target: [pair.target[0], pair.target[1]] };
}
