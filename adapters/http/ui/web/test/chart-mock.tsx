// uPlot draws on a canvas, which happy-dom lacks; component tests swap the
// chart for its title.
export const Chart = ({ title, x }: { title: string; x: number[] }) => (
  <figure data-testid="chart" data-points={x.length}>
    {title}
  </figure>
);
export const dayX = (d: string[]) => d.map((x) => Date.parse(`${x}T00:00:00Z`) / 1000);
export const COLORS = {
  requests: '', input: '', output: '', cacheWrite: '', cacheRead: '', hit: '', cost: '',
  saved: '', clientError: '', rateLimited: '', serverError: '', overloaded: '', refused: '', p50: '', p95: '',
};
export const xLabel = (sec: number, step = 86_400) => {
  const iso = new Date(sec * 1000).toISOString();
  return step >= 86_400 ? iso.slice(0, 10) : `${iso.slice(0, 10)} ${iso.slice(11, 16)}`;
};
