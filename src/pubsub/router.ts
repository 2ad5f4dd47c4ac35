// Token trie from subscription patterns to values. A match walks the subject's tokens once, following
// at most the literal child and the `*` child per level and collecting `>` values on the way, so a
// publish costs O(tokens x wildcard branching), independent of the number of subscribers. No
// per-subscriber string matching.
import { parsePattern } from "./subjects.ts";

interface Entry<T> {
  value: T;
}

class TrieNode<T> {
  literal = new Map<string, TrieNode<T>>();
  star: TrieNode<T> | undefined;
  /** Patterns ending exactly at this node. */
  here = new Set<Entry<T>>();
  /** Patterns ending with `>` after this node (match one or more further tokens). */
  rest = new Set<Entry<T>>();

  isEmpty(): boolean {
    return this.literal.size === 0 && this.star === undefined && this.here.size === 0 && this.rest.size === 0;
  }
}

// Results are cached per subject until the next add/remove: a room with 1,000 subscribers and a message
// per second would otherwise rebuild the same 1,000-element array for every message.
const MAX_CACHED_SUBJECTS = 4096;

export class SubjectRouter<T> {
  #root = new TrieNode<T>();
  #size = 0;
  #cache = new Map<string, readonly T[]>();

  /** Number of registered (pattern, value) entries. */
  get size(): number {
    return this.#size;
  }

  /**
   * Registers value under pattern (validated: throws SubjectError). The same value may be added under
   * several patterns (or twice under one); each add is its own entry and match returns it once per entry.
   * Returns a remover; calling it more than once is harmless.
   */
  add(pattern: string, value: T): () => void {
    const tokens = parsePattern(pattern);
    const entry: Entry<T> = { value };
    const path: TrieNode<T>[] = [this.#root];
    let node = this.#root;
    let isRest = false;
    for (let i = 0; i < tokens.length; i++) {
      const t = tokens[i]!;
      if (t === ">") {
        isRest = true; // parsePattern guarantees it is the last token
        break;
      }
      let next: TrieNode<T> | undefined;
      if (t === "*") {
        next = node.star ??= new TrieNode<T>();
      } else {
        next = node.literal.get(t);
        if (!next) {
          next = new TrieNode<T>();
          node.literal.set(t, next);
        }
      }
      node = next;
      path.push(node);
    }
    const set = isRest ? node.rest : node.here;
    set.add(entry);
    this.#size++;
    this.#cache.clear();

    let removed = false;
    return () => {
      if (removed) return;
      removed = true;
      set.delete(entry);
      this.#size--;
      this.#cache.clear();
      // Prune now-empty nodes bottom-up so churn (tabs coming and going) does not grow the trie forever.
      const walked = tokens[tokens.length - 1] === ">" ? tokens.slice(0, -1) : tokens;
      for (let i = path.length - 1; i > 0; i--) {
        const child = path[i]!;
        if (!child.isEmpty()) break;
        const parent = path[i - 1]!;
        const t = walked[i - 1]!;
        if (t === "*") {
          if (parent.star === child) parent.star = undefined;
        } else if (parent.literal.get(t) === child) {
          parent.literal.delete(t);
        }
      }
    };
  }

  /**
   * Values whose pattern matches the literal subject (assumed valid; it is split on `.` only).
   * The array is shared with later calls until the router changes: read it, do not modify it.
   */
  match(subject: string): readonly T[] {
    const cached = this.#cache.get(subject);
    if (cached) return cached;
    const out: T[] = [];
    this.#walk(this.#root, subject.split("."), 0, out);
    if (this.#cache.size >= MAX_CACHED_SUBJECTS) this.#cache.clear();
    this.#cache.set(subject, out);
    return out;
  }

  #walk(node: TrieNode<T>, tokens: string[], i: number, out: T[]): void {
    if (i === tokens.length) {
      for (const e of node.here) out.push(e.value);
      return;
    }
    // At least one token remains, so `>` registered at this node matches.
    for (const e of node.rest) out.push(e.value);
    const lit = node.literal.get(tokens[i]!);
    if (lit) this.#walk(lit, tokens, i + 1, out);
    if (node.star) this.#walk(node.star, tokens, i + 1, out);
  }
}
