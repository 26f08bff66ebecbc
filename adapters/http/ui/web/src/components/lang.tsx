import { setLang, t, useLang, type Lang } from '../i18n';

export function LangSwitch() {
  const l = useLang();
  return (
    <label class="lang">
      <span class="sr-only">{t('nav.language')}</span>
      <select value={l} onChange={(e) => setLang((e.target as HTMLSelectElement).value as Lang)}>
        <option value="en" lang="en">
          English
        </option>
        <option value="zh" lang="zh-CN">
          简体中文
        </option>
      </select>
    </label>
  );
}
