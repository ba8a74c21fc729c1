/**
 * CSV (RFC 4180) for the bulk key import and export: parse with quoted fields, doubled quotes and
 * CRLF or LF line ends; format quoting only where needed. A cell that a spreadsheet would run as a
 * formula (`=`, `+`, `-`, `@`, tab, CR first) is written with a leading `'` (OWASP's CSV-injection
 * advice: key names are tenant-supplied), and `parseCsv` takes that `'` off again, so an export
 * imports back unchanged.
 */

/** A cell a spreadsheet would run, behind any number of `'` (so a name that starts with `'=` survives too). */
const FORMULA = /^'*[=+\-@\t\r]/;

/** Rows of cells. The final line break ends the last row; a blank line is one empty cell (records skip it). */
export function parseCsv(text: string): string[][] {
  const rows: string[][] = [];
  let row: string[] = [];
  let field = "";
  let quoted = false;
  let i = text.charCodeAt(0) === 0xfeff ? 1 : 0; // a BOM, as spreadsheets write it
  const endField = () => {
    row.push(field[0] === "'" && FORMULA.test(field) ? field.slice(1) : field);
    field = "";
  };
  for (; i < text.length; i++) {
    const ch = text[i] as string;
    if (quoted) {
      if (ch === '"' && text[i + 1] === '"') {
        field += '"';
        i++;
      } else if (ch === '"') quoted = false;
      else field += ch;
    } else if (ch === '"' && field === "") quoted = true;
    else if (ch === ",") endField();
    else if (ch === "\n" || ch === "\r") {
      if (ch === "\r" && text[i + 1] === "\n") i++;
      endField();
      rows.push(row);
      row = [];
    } else field += ch;
  }
  if (field !== "" || row.length > 0) {
    endField();
    rows.push(row);
  }
  return rows;
}

/** Rows of objects keyed by the header row's names (trimmed, lower-cased). */
export function parseCsvRecords(text: string): { header: string[]; records: Record<string, string>[] } {
  const [head = [], ...rest] = parseCsv(text);
  const header = head.map((h) => h.trim().toLowerCase());
  const records = rest
    .filter((cells) => cells.some((c) => c.trim() !== ""))
    .map((cells) => Object.fromEntries(header.map((name, i) => [name, cells[i] ?? ""])));
  return { header, records };
}

function formatCell(value: string): string {
  const safe = FORMULA.test(value) ? `'${value}` : value;
  return /[",\r\n]/.test(safe) ? `"${safe.replace(/"/g, '""')}"` : safe;
}

/** One CSV line, CRLF-terminated as RFC 4180 says. */
export function formatCsvRow(cells: string[]): string {
  return `${cells.map(formatCell).join(",")}\r\n`;
}

/** A whole CSV file: the header, then one line per row. */
export function formatCsv(header: string[], rows: string[][]): string {
  return [header, ...rows].map(formatCsvRow).join("");
}
