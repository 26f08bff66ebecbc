// The admin session: the JWT from POST /admin/login, held in memory and in
// sessionStorage (this tab only, gone when it closes) — never localStorage,
// so no other tab, and nothing after the browser closes, can reuse it. It
// ends on sign-out, at the token's expiry and on any 401.

const STORE = 'relay.admin.session';

type Stored = { token: string; user: string; expiresAt: number };
type Listener = () => void;

function storage(): Storage | null {
  try {
    return typeof sessionStorage === 'undefined' ? null : sessionStorage;
  } catch {
    return null;
  }
}

class Session {
  private cur: Stored | null = null;
  private timer: ReturnType<typeof setTimeout> | undefined;
  private listeners = new Set<Listener>();
  /** Why the last session ended ('' after a sign-out), for the login page. */
  reason = '';

  constructor() {
    const raw = storage()?.getItem(STORE);
    if (raw) {
      try {
        const s = JSON.parse(raw) as Stored;
        if (typeof s.token === 'string' && s.expiresAt > Date.now()) this.set(s);
        else storage()?.removeItem(STORE);
      } catch {
        storage()?.removeItem(STORE);
      }
    }
  }

  private set(s: Stored | null): void {
    clearTimeout(this.timer);
    this.cur = s;
    if (s) {
      storage()?.setItem(STORE, JSON.stringify(s));
      // setTimeout takes at most a 32-bit delay; tokens live far shorter.
      const ms = Math.min(s.expiresAt - Date.now(), 2 ** 31 - 1);
      this.timer = setTimeout(() => this.end('expired'), Math.max(ms, 0));
    } else {
      storage()?.removeItem(STORE);
    }
    for (const l of this.listeners) l();
  }

  token(): string | null {
    if (this.cur && this.cur.expiresAt <= Date.now()) {
      this.end('expired');
      return null;
    }
    return this.cur?.token ?? null;
  }

  user(): string {
    return this.cur?.user ?? '';
  }

  expiresAt(): number {
    return this.cur?.expiresAt ?? 0;
  }

  start(user: string, token: string, expiresIn: number): void {
    this.reason = '';
    this.set({ token, user, expiresAt: Date.now() + expiresIn * 1000 });
  }

  /** Ends the session; reason is shown on the login page ('' = signed out). */
  end(reason = ''): void {
    if (!this.cur) return;
    this.reason = reason;
    this.set(null);
  }

  subscribe(l: Listener): () => void {
    this.listeners.add(l);
    return () => this.listeners.delete(l);
  }
}

export const session = new Session();
