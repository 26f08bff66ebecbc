// Money budgets: the live bars of the quota views (used, reserved shaded,
// what is left and when the window resets) and the bare limits of the key
// views. Shared by the key list (which carries each key's quota view), the
// key detail and the key holder's page.
import type { Budget, BudgetWindow, MoneyBudgetStatus } from '../api/client';
import { t } from '../i18n';
import { dateTime, pct, resetIn, usd } from '../format';
import { useNow, useReloadAt } from '../hooks';
import { Empty } from './ui';

export const WINDOWS: readonly BudgetWindow[] = ['5h', 'day', 'week', 'month', 'total'];

/** Calendar windows take a time zone; 5h and total do not. */
export function isCalendar(w: BudgetWindow): boolean {
  return w === 'day' || w === 'week' || w === 'month';
}

export function windowName(w: BudgetWindow): string {
  return t(`budget.window.${w}` as const);
}

/** "Day (Europe/Paris)". */
export function windowLabel(w: BudgetWindow, zone?: string): string {
  return zone ? `${windowName(w)} (${zone})` : windowName(w);
}

/** When a window's spend next leaves it, ticking. */
function ResetsIn({ b, now }: { b: MoneyBudgetStatus; now: number }) {
  if (!b.resets_at) {
    return <span>{b.window === 'total' ? t('budget.neverResets') : t('budget.nothingHeld')}</span>;
  }
  return (
    <time dateTime={b.resets_at} title={dateTime(b.resets_at)}>
      {t('budget.resetsIn', { t: resetIn((Date.parse(b.resets_at) - now) / 1000) })}
    </time>
  );
}

/** One budget: used as the bar's fill, reserved shaded after it, then what is left and the reset. */
export function BudgetBar({ b, now, label }: { b: MoneyBudgetStatus; now: number; label: string }) {
  const limit = b.limit_usd;
  const used = limit > 0 ? b.used_usd / limit : 1;
  const held = limit > 0 ? b.reserved_usd / limit : 0;
  const level = used + held >= 1 ? 'full' : used + held >= 0.8 ? 'high' : 'ok';
  const usedW = Math.min(used, 1);
  const heldW = Math.min(held, 1 - usedW);
  return (
    <div class={`usage-bar budget ${level}`}>
      <span class="bar-text">
        <strong>{windowLabel(b.window, b.time_zone)}</strong> {usd(b.used_usd)} / {usd(limit)}{' '}
        <span class="muted">({pct(used)})</span>
      </span>
      <span
        class="bar"
        role="progressbar"
        aria-label={label}
        aria-valuemin={0}
        aria-valuemax={limit}
        aria-valuenow={Math.min(b.used_usd, limit)}
        aria-valuetext={t('budget.valueText', { used: usd(b.used_usd), reserved: usd(b.reserved_usd), limit: usd(limit) })}
      >
        <span class="fill" style={{ width: `${usedW * 100}%` }} />
        {heldW > 0 && <span class="reserved" data-testid="reserved" style={{ width: `${heldW * 100}%` }} />}
      </span>
      <span class="bar-text muted">
        {b.reserved_usd > 0 && <>{t('budget.reserved', { amount: usd(b.reserved_usd) })} · </>}
        {t('budget.remaining', { amount: usd(b.remaining_usd) })} · <ResetsIn b={b} now={now} />
      </span>
    </div>
  );
}

/**
 * Every budget of a quota view as bars. Countdowns tick each second; when
 * one passes, onStale is called (once per reset time) so the caller can
 * fetch the new window.
 */
export function BudgetList({
  budgets,
  name,
  onStale,
}: {
  budgets: MoneyBudgetStatus[];
  name: string;
  onStale?: () => void;
}) {
  const now = useNow(budgets.some((b) => b.resets_at));
  useReloadAt(
    budgets.map((b) => b.resets_at),
    now,
    onStale,
  );
  if (budgets.length === 0) return <Empty>{t('budget.noneSet')}</Empty>;
  return (
    <ul class="budgets">
      {budgets.map((b) => (
        <li key={`${b.window}@${b.time_zone ?? ''}`}>
          <BudgetBar b={b} now={now} label={t('budget.barLabel', { window: windowLabel(b.window, b.time_zone), name })} />
        </li>
      ))}
    </ul>
  );
}

/**
 * A key list row's budgets as bars. The page ticks one clock for all its
 * rows (now) and refetches once a window resets, so a row keeps no timer.
 */
export function BudgetBars({ budgets, name, now }: { budgets: MoneyBudgetStatus[]; name: string; now: number }) {
  if (budgets.length === 0) return <span class="muted">{t('budget.none')}</span>;
  return (
    <ul class="budgets compact">
      {budgets.map((b) => (
        <li key={`${b.window}@${b.time_zone ?? ''}`}>
          <BudgetBar b={b} now={now} label={t('budget.barLabel', { window: windowLabel(b.window, b.time_zone), name })} />
        </li>
      ))}
    </ul>
  );
}

/** The limits alone, as the key views carry them (no spend: that is in the quota views). */
export function BudgetLimits({ budgets }: { budgets: Budget[] | undefined }) {
  if (!budgets || budgets.length === 0) return <span class="muted">{t('budget.none')}</span>;
  return (
    <ul class="budget-limits">
      {budgets.map((b) => (
        <li key={`${b.window}@${b.time_zone ?? ''}`}>
          {windowLabel(b.window, b.time_zone)} <strong>{usd(b.limit_usd)}</strong>
        </li>
      ))}
    </ul>
  );
}
