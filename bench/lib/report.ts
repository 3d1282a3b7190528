/** Benchmark results: the table on stdout, `bench/results/latest.json`, and SVG charts. */

export interface Figure {
  name: string;
  value: number;
  unit: string;
  baseline?: number;
  ratio?: number;
  goal?: string;
  note?: string;
}

export function figure(
  name: string,
  value: number,
  unit: string,
  extra: { baseline?: number; goal?: string; note?: string; ratio?: number } = {},
): Figure {
  const f: Figure = { name, value: round(value), unit };
  if (extra.baseline !== undefined) {
    f.baseline = round(extra.baseline);
    f.ratio = round(extra.ratio ?? value / extra.baseline);
  } else if (extra.ratio !== undefined) {
    f.ratio = round(extra.ratio);
  }
  if (extra.goal) f.goal = extra.goal;
  if (extra.note) f.note = extra.note;
  return f;
}

function round(x: number): number {
  if (!Number.isFinite(x)) return x;
  const digits = Math.abs(x) >= 100 ? 1 : Math.abs(x) >= 1 ? 3 : 4;
  return Number(x.toFixed(digits));
}

export function printTable(figures: Figure[]): void {
  const rows = figures.map((f) => [
    f.name,
    `${f.value} ${f.unit}`,
    f.baseline === undefined ? "" : String(f.baseline),
    f.ratio === undefined ? "" : String(f.ratio),
    f.goal ?? "",
  ]);
  const header = ["figure", "value", "baseline", "ratio", "goal"];
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  const line = (cells: string[]) => cells.map((c, i) => c.padEnd(widths[i]!)).join("  ");
  console.log(line(header));
  console.log(widths.map((w) => "-".repeat(w)).join("  "));
  for (const row of rows) console.log(line(row));
}

function escape(text: string): string {
  return text.replace(/&/g, "&amp;").replace(/</g, "&lt;");
}

/** A grouped horizontal bar chart. */
export function barChart(
  title: string,
  unit: string,
  groups: { label: string; bars: { name: string; value: number }[] }[],
): string {
  const colors = ["#2f6fde", "#d9822b", "#3aa655", "#9b59b6"];
  const names = [...new Set(groups.flatMap((g) => g.bars.map((b) => b.name)))];
  const max = Math.max(
    1e-9,
    ...groups.flatMap((g) => g.bars.map((b) => (Number.isFinite(b.value) ? b.value : 0))),
  );
  const barH = 16;
  const rowH = names.length * barH + 14;
  const left = 190;
  const width = 720;
  const height = 60 + groups.length * rowH + 24;
  const parts: string[] = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" font-family="sans-serif" font-size="12">`,
    `<rect width="100%" height="100%" fill="white"/>`,
    `<text x="10" y="22" font-size="15" font-weight="bold">${escape(title)}</text>`,
  ];
  names.forEach((n, i) => {
    parts.push(
      `<rect x="${left + i * 140}" y="32" width="12" height="12" fill="${
        colors[i % colors.length]
      }"/>`,
    );
    parts.push(`<text x="${left + i * 140 + 16}" y="43">${escape(n)}</text>`);
  });
  groups.forEach((g, gi) => {
    const y0 = 56 + gi * rowH;
    parts.push(`<text x="10" y="${y0 + (names.length * barH) / 2 + 4}">${escape(g.label)}</text>`);
    g.bars.forEach((b) => {
      const i = names.indexOf(b.name);
      const w = Number.isFinite(b.value) ? Math.max(1, ((width - left - 90) * b.value) / max) : 0;
      const y = y0 + i * barH;
      parts.push(
        `<rect x="${left}" y="${y}" width="${w.toFixed(1)}" height="${barH - 3}" fill="${
          colors[i % colors.length]
        }"/>`,
      );
      parts.push(
        `<text x="${left + w + 4}" y="${y + barH - 5}">${
          Number.isFinite(b.value) ? round(b.value) : "n/a"
        } ${escape(unit)}</text>`,
      );
    });
  });
  parts.push("</svg>");
  return parts.join("\n") + "\n";
}

/** One line of a {@linkcode lineCharts} panel: a design's value at each fleet size. */
export interface Series {
  name: string;
  points: { x: number; y: number }[];
}

/**
 * Panels of line charts side by side, sharing a logarithmic x axis (fleet size): how a cost grows
 * with the fleet, one line per design. Points that were not measured (NaN) are left out.
 */
export function lineCharts(
  title: string,
  panels: { title: string; unit: string; series: Series[]; logY?: boolean }[],
): string {
  const colors: Record<string, string> = {};
  const palette = ["#2f6fde", "#d9822b", "#3aa655", "#9b59b6"];
  const panelW = 300;
  const panelH = 220;
  const pad = { left: 56, right: 16, top: 44, bottom: 40 };
  const width = panels.length * panelW + 20;
  const height = panelH + 90;
  const parts: string[] = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" font-family="sans-serif" font-size="11">`,
    `<rect width="100%" height="100%" fill="white"/>`,
    `<text x="10" y="20" font-size="15" font-weight="bold">${escape(title)}</text>`,
  ];
  const names = [...new Set(panels.flatMap((p) => p.series.map((s) => s.name)))];
  names.forEach((name, i) => {
    colors[name] = palette[i % palette.length]!;
    parts.push(`<rect x="${10 + i * 110}" y="30" width="12" height="12" fill="${colors[name]}"/>`);
    parts.push(`<text x="${26 + i * 110}" y="40">${escape(name)}</text>`);
  });
  panels.forEach((panel, pi) => {
    const x0 = 10 + pi * panelW;
    const y0 = 50;
    const points = panel.series.flatMap((s) => s.points).filter((p) => Number.isFinite(p.y));
    const xs = points.map((p) => Math.log10(p.x));
    const minX = Math.min(...xs);
    const maxX = Math.max(minX + 1e-9, ...xs);
    const maxY = Math.max(1e-9, ...points.map((p) => p.y)) * 1.1;
    const plotW = panelW - pad.left - pad.right;
    const plotH = panelH - pad.top - pad.bottom + 30;
    const px = (x: number) => x0 + pad.left + ((Math.log10(x) - minX) / (maxX - minX)) * plotW;
    // A log scale for values spread over decades (MB per cluster: 0.2 to 17), linear otherwise.
    const lowY = panel.logY
      ? 10 ** Math.floor(Math.log10(Math.min(...points.map((p) => p.y).filter((y) => y > 0))))
      : 0;
    const highY = panel.logY ? 10 ** Math.ceil(Math.log10(maxY)) : maxY;
    const py = (y: number) =>
      y0 + 24 + plotH -
      (panel.logY
          ? (Math.log10(Math.max(y, lowY)) - Math.log10(lowY)) /
            (Math.log10(highY) - Math.log10(lowY))
          : y / maxY) * plotH;
    parts.push(
      `<text x="${x0 + pad.left}" y="${y0 + 12}" font-weight="bold">${escape(panel.title)} (${
        escape(panel.unit)
      })</text>`,
      `<line x1="${x0 + pad.left}" y1="${py(lowY)}" x2="${x0 + pad.left + plotW}" y2="${
        py(lowY)
      }" stroke="#888"/>`,
      `<line x1="${x0 + pad.left}" y1="${py(lowY)}" x2="${x0 + pad.left}" y2="${
        py(highY)
      }" stroke="#888"/>`,
    );
    const ticks = panel.logY
      ? Array.from(
        { length: Math.round(Math.log10(highY / lowY)) + 1 },
        (_, i) => lowY * 10 ** i,
      )
      : [0, 0.5, 1].map((t) => Number((maxY / 1.1 * t).toPrecision(2)));
    for (const y of ticks) {
      parts.push(
        `<text x="${x0 + pad.left - 4}" y="${py(y) + 4}" text-anchor="end">${round(y)}</text>`,
      );
    }
    for (const x of [...new Set(points.map((p) => p.x))]) {
      parts.push(
        `<text x="${px(x)}" y="${py(lowY) + 14}" text-anchor="middle">${
          x >= 1000 ? `${x / 1000}k` : x
        }</text>`,
      );
    }
    for (const s of panel.series) {
      const shown = s.points.filter((p) => Number.isFinite(p.y));
      if (shown.length === 0) continue;
      parts.push(
        `<polyline fill="none" stroke="${colors[s.name]}" stroke-width="2" points="${
          shown.map((p) => `${px(p.x).toFixed(1)},${py(p.y).toFixed(1)}`).join(" ")
        }"/>`,
      );
      for (const p of shown) {
        parts.push(
          `<circle cx="${px(p.x).toFixed(1)}" cy="${py(p.y).toFixed(1)}" r="3" fill="${
            colors[s.name]
          }"/>`,
        );
      }
    }
    parts.push(
      `<text x="${x0 + pad.left + plotW / 2}" y="${
        py(lowY) + 30
      }" text-anchor="middle">clusters (log scale)</text>`,
    );
  });
  parts.push("</svg>");
  return parts.join("\n") + "\n";
}
