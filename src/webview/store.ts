// One typed state for the editor page, changed only through `update` and drawn only by its subscribers, so no change
// can forget to redraw what depends on it.

/** Draws `state`; `previous` is the state it replaces (undefined on the first call), to skip what did not change. */
export type Render<S> = (state: S, previous: S | undefined) => void;

export class Store<S extends object> {
  private current: S;
  private readonly renders: Render<S>[] = [];

  constructor(initial: S) {
    this.current = initial;
  }

  get state(): S {
    return this.current;
  }

  /**
   * Replaces the state with `change(state)` and runs every subscriber. States are replaced, never mutated: a change
   * that returns the state it was given changes nothing and draws nothing.
   */
  update(change: (state: S) => S): void {
    const previous = this.current;
    const next = change(previous);
    if (next === previous) return;
    this.current = next;
    for (const render of this.renders) render(next, previous);
  }

  /** Runs `render` now, for the current state, and after every change; returns a function that stops it. */
  subscribe(render: Render<S>): () => void {
    this.renders.push(render);
    render(this.current, undefined);
    return () => {
      const at = this.renders.indexOf(render);
      if (at >= 0) this.renders.splice(at, 1);
    };
  }
}
