// The point pairs as a list beside the canvas: what a screen reader announces, and a way to select and delete pairs
// without a pointer.
import type { ImagePoint, PointPair } from '../shared/edit-spec';

export class PointsList {
  private readonly list = document.getElementById('points-list') as HTMLOListElement;
  private readonly summary = document.getElementById('points-summary') as HTMLElement;

  constructor(private readonly actions: { select(index: number): void; remove(index: number): void }) {}

  show(points: readonly PointPair[], selected: number | undefined, pendingHandle: ImagePoint | undefined): void {
    this.summary.textContent =
      points.length === 0 && !pendingHandle
        ? 'No point pairs. With the Points tool, click a handle, then where it should go.'
        : `${points.length} point ${points.length === 1 ? 'pair' : 'pairs'}${pendingHandle ? `; handle ${points.length + 1} at ${formatPoint(pendingHandle)} waits for its target (click it, or Esc to drop it)` : ''}.`;
    const items = points.map((pair, index) => {
      const item = document.createElement('li');
      item.className = index === selected ? 'selected' : '';
      const label = document.createElement('button');
      label.type = 'button';
      label.className = 'pair';
      label.setAttribute('aria-pressed', String(index === selected));
      label.textContent = `${index + 1}: ${formatPoint(pair.handle)} → ${formatPoint(pair.target)}`;
      label.setAttribute('aria-label', `Pair ${index + 1}: handle at ${formatPoint(pair.handle)}, target at ${formatPoint(pair.target)}`);
      label.addEventListener('click', () => this.actions.select(index));
      const remove = document.createElement('button');
      remove.type = 'button';
      remove.className = 'remove';
      remove.textContent = '×';
      remove.title = `Delete pair ${index + 1}`;
      remove.setAttribute('aria-label', `Delete pair ${index + 1}`);
      remove.addEventListener('click', () => this.actions.remove(index));
      item.append(label, remove);
      return item;
    });
    this.list.replaceChildren(...items);
  }
}

export function formatPoint([x, y]: ImagePoint): string {
  const format = (v: number) => (Number.isInteger(v) ? String(v) : v.toFixed(1));
  return `(${format(x)}, ${format(y)})`;
}
