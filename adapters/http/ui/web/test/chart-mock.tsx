// uPlot draws on a canvas, which happy-dom lacks; component tests swap the
// chart for its title.
export const Chart = ({ title }: { title: string }) => <figure data-testid="chart">{title}</figure>;
export const dayX = (d: string[]) => d.map((x) => Date.parse(`${x}T00:00:00Z`) / 1000);
export const COLORS = { requests: '', input: '', output: '', cacheWrite: '', cacheRead: '', hit: '', cost: '' };
