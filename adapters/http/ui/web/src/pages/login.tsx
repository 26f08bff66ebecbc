import { useState } from 'preact/hooks';
import { admin, basicAuth, unwrap } from '../api/client';
import { session } from '../session';
import { navigate, Link } from '../router';
import { t } from '../i18n';
import { ErrorBox } from '../components/ui';
import { LangSwitch } from '../components/lang';

/** The admin login: HTTP Basic to POST /admin/login, for a JWT. */
export function Login({ next }: { next: string }) {
  const [user, setUser] = useState('admin');
  const [password, setPassword] = useState('');
  const [busy, setBusy] = useState(false);
  const [err, setErr] = useState<Error | undefined>();
  const reason = session.reason;

  const submit = async (e: Event): Promise<void> => {
    e.preventDefault();
    setBusy(true);
    setErr(undefined);
    try {
      const r = unwrap(
        await admin().POST('/admin/login', { headers: { Authorization: basicAuth(user, password) } }),
      );
      setPassword('');
      session.start(user, r.access_token, r.expires_in);
      // Only an app path is followed, never another origin.
      navigate(next.startsWith('/') && !next.startsWith('//') ? next : '/', true);
    } catch (e2) {
      setErr(e2 instanceof Error ? e2 : new Error(String(e2)));
    } finally {
      setBusy(false);
    }
  };

  return (
    <main id="main" class="login" tabIndex={-1}>
      <div class="login-box">
        <div class="login-head">
          <h1>{t('app.title')}</h1>
          <LangSwitch />
        </div>
        <p class="muted">{t('login.intro')}</p>
        {reason && (
          <p class="notice" role="status">
            {reason === 'expired' ? t('login.expired') : t('login.ended', { reason })}
          </p>
        )}
        <form onSubmit={submit} aria-label={t('login.title')}>
          <div class="field">
            <label for="login-user">{t('login.user')}</label>
            <input
              id="login-user"
              name="username"
              autocomplete="username"
              required
              value={user}
              onInput={(e) => setUser((e.target as HTMLInputElement).value)}
            />
          </div>
          <div class="field">
            <label for="login-password">{t('login.password')}</label>
            <input
              id="login-password"
              name="password"
              type="password"
              autocomplete="current-password"
              required
              autofocus
              value={password}
              onInput={(e) => setPassword((e.target as HTMLInputElement).value)}
            />
          </div>
          {err && <ErrorBox error={err} />}
          <button type="submit" class="primary" disabled={busy}>
            {busy ? t('login.busy') : t('login.submit')}
          </button>
        </form>
        <p class="muted small">
          {t('login.keyHolder')} <Link href="/me">{t('login.keyHolderLink')}</Link>
        </p>
      </div>
    </main>
  );
}
