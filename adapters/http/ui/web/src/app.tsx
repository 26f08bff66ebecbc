import type { ComponentChildren } from 'preact';
import { useEffect, useRef, useState } from 'preact/hooks';
import { session } from './session';
import { Link, match, navigate, useLocation } from './router';
import { t, useLang } from './i18n';
import { LangSwitch } from './components/lang';
import { Login } from './pages/login';
import { Overview } from './pages/overview';
import { Keys } from './pages/keys';
import { KeyDetail } from './pages/keydetail';
import { Logs } from './pages/logs';
import { Tiers } from './pages/tiers';
import { Pricing } from './pages/pricing';
import { Upstreams } from './pages/upstreams';
import { Me } from './pages/me';

function useSession(): string | null {
  const [, tick] = useState(0);
  useEffect(() => session.subscribe(() => tick((n) => n + 1)), []);
  return session.token();
}

const NAV: { href: string; key: 'nav.overview' | 'nav.keys' | 'nav.logs' | 'nav.tiers' | 'nav.pricing' | 'nav.upstreams' }[] = [
  { href: '/', key: 'nav.overview' },
  { href: '/keys', key: 'nav.keys' },
  { href: '/logs', key: 'nav.logs' },
  { href: '/tiers', key: 'nav.tiers' },
  { href: '/pricing', key: 'nav.pricing' },
  { href: '/upstreams', key: 'nav.upstreams' },
];

function Shell({ path, children }: { path: string; children: ComponentChildren }) {
  const [menu, setMenu] = useState(false);
  useEffect(() => setMenu(false), [path]);
  const section = '/' + (path.split('/')[1] ?? '');
  return (
    <div class="shell">
      <a class="skip" href="#main">
        {t('nav.skip')}
      </a>
      <header class="top">
        <span class="brand">{t('app.title')}</span>
        <button
          type="button"
          class="menu-toggle"
          aria-expanded={menu}
          aria-controls="nav"
          onClick={() => setMenu(!menu)}
        >
          {t('nav.menu')}
        </button>
        <nav id="nav" class={menu ? 'open' : ''} aria-label={t('nav.main')}>
          <ul>
            {NAV.map((n) => (
              <li key={n.href}>
                <Link href={n.href} aria-current={section === n.href ? 'page' : undefined}>
                  {t(n.key)}
                </Link>
              </li>
            ))}
          </ul>
          <div class="nav-end">
            <LangSwitch />
            <span class="who" title={t('nav.signedInAs', { user: session.user() })}>
              {session.user()}
            </span>
            <button
              type="button"
              onClick={() => {
                session.end();
                navigate('/login');
              }}
            >
              {t('nav.signOut')}
            </button>
          </div>
        </nav>
      </header>
      <main id="main" tabIndex={-1}>
        {children}
      </main>
    </div>
  );
}

export function App() {
  useLang();
  const token = useSession();
  const { path, query } = useLocation();

  // Title per page, and focus on the new page's content after a
  // navigation (not on first load, where the page's own autofocus wins),
  // so a screen reader announces where navigation went.
  const first = useRef(true);
  useEffect(() => {
    const name = path.split('/')[1] || 'overview';
    const key = `nav.${name}` as const;
    const known = ['overview', 'keys', 'logs', 'tiers', 'pricing', 'upstreams', 'me', 'login'];
    document.title = `${known.includes(name) ? t(key as 'nav.overview') : t('app.title')} · ${t('app.title')}`;
    if (first.current) first.current = false;
    else if (path !== '/login') document.getElementById('main')?.focus({ preventScroll: true });
  }, [path]);

  if (path === '/me' || path.startsWith('/me/')) return <Me />;

  if (!token) {
    if (path !== '/login') {
      const next = path === '/' ? '' : `?next=${encodeURIComponent(path + location.search)}`;
      queueMicrotask(() => navigate(`/login${next}`, true));
    }
    return <Login next={query.get('next') ?? ''} />;
  }
  if (path === '/login') {
    queueMicrotask(() => navigate('/', true));
    return null;
  }

  let page;
  let m: Record<string, string> | null;
  if (path === '/') page = <Overview />;
  else if (path === '/keys') page = <Keys />;
  else if ((m = match('/keys/:id', path))) page = <KeyDetail id={m.id ?? ''} />;
  else if (path === '/logs') page = <Logs />;
  else if (path === '/tiers') page = <Tiers />;
  else if (path === '/pricing') page = <Pricing />;
  else if (path === '/upstreams') page = <Upstreams />;
  else
    page = (
      <section>
        <h1>{t('notFound.title')}</h1>
        <p>
          <Link href="/">{t('notFound.back')}</Link>
        </p>
      </section>
    );
  return <Shell path={path}>{page}</Shell>;
}
