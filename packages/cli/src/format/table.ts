/** Columns padded to their widest cell, three spaces apart, no trailing blanks (kubectl's style). */
export function renderTable(headers: string[], rows: string[][]): string {
  const widths = headers.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? "").length)));
  const line = (cells: string[]) =>
    cells
      .map((cell, i) => (i === cells.length - 1 ? cell : cell.padEnd(widths[i])))
      .join("   ")
      .trimEnd();
  return [line(headers), ...rows.map(line)].join("\n") + "\n";
}

/** Cuts text to at most `max` characters, marking the cut with an ellipsis; newlines become spaces. */
export function clip(text: string, max: number): string {
  const flat = text.replace(/\s*\n\s*/g, " ");
  return flat.length <= max ? flat : `${flat.slice(0, Math.max(0, max - 1))}…`;
}
