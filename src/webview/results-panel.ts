// The result history of this image and the comparison view: before/after with a split slider, or side by side. The
// "before" is the source, or any result set as the baseline (to compare two results: two modes, two parameter sets).
// Opening a result and revealing it in the Explorer are the extension's (it decides what the file is). Each result
// shows the mode its recipe names, so results of different modes can be told apart and compared.
import { EDIT_MODE_NAMES } from '../shared/edit-parameters';
import type { ResultAction, ResultView } from '../shared/webview-messages';
import { button } from './run-panel';

export type CompareMode = 'slider' | 'side';

export class ResultsPanel {
  private readonly list = document.getElementById('results') as HTMLUListElement;
  private readonly compare = document.getElementById('compare') as HTMLElement;
  private readonly slider = document.getElementById('compare-slider') as HTMLElement;
  private readonly side = document.getElementById('compare-side') as HTMLElement;
  private readonly empty = document.getElementById('compare-empty') as HTMLElement;
  private readonly caption = document.getElementById('compare-caption') as HTMLElement;
  private readonly position = document.getElementById('compare-position') as HTMLInputElement;
  private readonly afterOverlay = document.getElementById('compare-after-overlay') as HTMLImageElement;
  private readonly divider = document.getElementById('compare-divider') as HTMLElement;
  private results: ResultView[] = [];
  private selected: string | undefined;
  /** The result shown as "before" instead of the source; undefined: the source. */
  private baseline: string | undefined;
  private mode: CompareMode = 'slider';
  private sourceSrc = '';

  constructor(private readonly handlers: { action(action: ResultAction, file: string): void; compareShown(file: string): void }) {
    this.position.addEventListener('input', () => this.applySplit());
    for (const modeButton of document.querySelectorAll<HTMLButtonElement>('.compare-mode')) {
      modeButton.addEventListener('click', () => this.setMode(modeButton.dataset.compare as CompareMode));
    }
  }

  get selectedFile(): string | undefined {
    return this.selected;
  }

  setSource(src: string): void {
    this.sourceSrc = src;
    this.render();
  }

  show(results: ResultView[]): void {
    this.results = results;
    if (this.selected && !results.some((r) => r.file === this.selected)) this.selected = undefined;
    if (this.baseline && !results.some((r) => r.file === this.baseline)) this.baseline = undefined;
    const items = results.map((result) => {
      const item = document.createElement('li');
      item.className = [result.file === this.selected ? 'selected' : '', result.file === this.baseline ? 'baseline' : ''].filter(Boolean).join(' ');
      const thumbnail = document.createElement('img');
      thumbnail.src = result.src;
      thumbnail.alt = '';
      thumbnail.loading = 'lazy';
      const text = document.createElement('span');
      text.className = 'result-name';
      text.textContent = result.file;
      const mode = document.createElement('span');
      mode.className = 'result-mode';
      if (result.mode) {
        mode.dataset.mode = result.mode;
        mode.textContent = `Mode: ${EDIT_MODE_NAMES[result.mode]} (${result.mode})`;
      } else {
        mode.textContent = 'Mode: not recorded (no readable recipe)';
      }
      const time = document.createElement('time');
      time.dateTime = new Date(result.modified).toISOString();
      time.textContent = new Date(result.modified).toLocaleString();
      const actions = document.createElement('span');
      actions.className = 'result-actions';
      const compare = button('Compare', () => this.select(result.file));
      compare.setAttribute('aria-label', `Compare ${result.file} with ${this.baseline && this.baseline !== result.file ? this.baseline : 'the source'}`);
      const isBaseline = result.file === this.baseline;
      const before = button(isBaseline ? 'Before ✓' : 'Before', () => this.setBaseline(isBaseline ? undefined : result.file));
      before.setAttribute('aria-label', isBaseline ? `Compare with the source again instead of ${result.file}` : `Compare other results with ${result.file}`);
      before.setAttribute('aria-pressed', String(isBaseline));
      const open = button('Open', () => this.handlers.action('open', result.file));
      open.setAttribute('aria-label', `Open ${result.file}`);
      const reveal = button('Reveal', () => this.handlers.action('reveal', result.file));
      reveal.setAttribute('aria-label', `Reveal ${result.file} in the Explorer`);
      actions.append(compare, before, open, reveal);
      if (result.recipe) {
        const recipe = button('Recipe', () => this.handlers.action('openRecipe', result.file));
        recipe.setAttribute('aria-label', `Open the recipe of ${result.file}`);
        actions.append(recipe);
      }
      item.append(thumbnail, text, mode, time, actions);
      return item;
    });
    if (items.length === 0) {
      const item = document.createElement('li');
      item.className = 'hint';
      item.textContent = 'No results yet. Results are written next to the image as <name>.clipdrag.png.';
      items.push(item);
    }
    this.list.replaceChildren(...items);
    this.render();
  }

  /** Marks a result as the one to compare (a new result), without leaving the editing view. */
  highlight(file: string): void {
    this.selected = file;
    this.show(this.results);
  }

  /** Shows this result in the comparison (and switches the view to it). */
  select(file: string): void {
    this.selected = file;
    this.show(this.results);
    this.handlers.compareShown(file);
  }

  setVisible(visible: boolean): void {
    this.compare.hidden = !visible;
    if (visible && !this.selected && this.results[0]) this.selected = this.results[0].file;
    this.render();
  }

  /** Shows `file` (a result) as "before" in the comparison; undefined: the source. */
  setBaseline(file: string | undefined): void {
    this.baseline = file;
    this.show(this.results);
  }

  setMode(mode: CompareMode): void {
    this.mode = mode;
    for (const modeButton of document.querySelectorAll<HTMLButtonElement>('.compare-mode')) modeButton.setAttribute('aria-pressed', String(modeButton.dataset.compare === mode));
    this.render();
  }

  private render(): void {
    const result = this.results.find((r) => r.file === this.selected);
    this.empty.hidden = Boolean(result);
    this.slider.hidden = !result || this.mode !== 'slider';
    this.side.hidden = !result || this.mode !== 'side';
    const baseline = this.results.find((r) => r.file === this.baseline);
    this.caption.textContent = result ? `${baseline ? describe(baseline) : 'Source'} vs ${describe(result)}` : '';
    const beforeSrc = baseline?.src ?? this.sourceSrc;
    for (const id of ['compare-before-overlay', 'compare-before-side']) {
      const image = document.getElementById(id) as HTMLImageElement;
      if (beforeSrc && image.getAttribute('src') !== beforeSrc) image.src = beforeSrc;
      image.alt = baseline ? `Result ${baseline.file}` : 'Source image';
    }
    if (!result) return;
    for (const id of ['compare-after-overlay', 'compare-after-side']) {
      const image = document.getElementById(id) as HTMLImageElement;
      if (image.getAttribute('src') !== result.src) image.src = result.src;
    }
    if (!this.sourceSrc) return;
    this.applySplit();
  }

  private applySplit(): void {
    const percent = Number(this.position.value);
    // The result shows to the right of the split, the source to the left.
    this.afterOverlay.style.clipPath = `inset(0 0 0 ${percent}%)`;
    this.divider.style.left = `${percent}%`;
  }
}

/** A result in the comparison's caption: its file, and the method its mode runs when the recipe names one. */
function describe(result: ResultView): string {
  return result.mode ? `${result.file} (${EDIT_MODE_NAMES[result.mode]})` : result.file;
}
