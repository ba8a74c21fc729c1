/**
 * The CLI's pure parts (node:test, part of `npm run test:cli`): CSV parse/format (quotes, CRLF,
 * formulas defused and read back), the sparkline's scale, the table's sanitising, duration flags and
 * the flag > environment > file precedence.
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { resolveTarget } from "../../cli/config";
import { formatCsv, parseCsv, parseCsvRecords } from "../../cli/csv";
import { duration } from "../../cli/options";
import { cell, formatTable, sparkline } from "../../cli/output";

describe("CSV", () => {
  it("reads quoted fields, doubled quotes, commas, newlines, CRLF and a BOM", () => {
    const text = '\ufeffname,note\r\n"a, b","say ""hi"""\r\nplain,"two\nlines"\n\n';
    assert.deepEqual(parseCsv(text), [["name", "note"], ["a, b", 'say "hi"'], ["plain", "two\nlines"], [""]]);
    assert.deepEqual(parseCsvRecords(text).records, [
      { name: "a, b", note: 'say "hi"' },
      { name: "plain", note: "two\nlines" },
    ]);
  });

  it("defuses formulas for spreadsheets and reads every value back as it was", () => {
    const values = ["=SUM(A1)", "+1", "-2", "@cmd", "\tx", "'=already", "'plain", 'q"uote', "a,b", ""];
    const text = formatCsv(
      ["v"],
      values.map((v) => [v]),
    );
    assert.ok(!/\r\n[=+\-@\t]/.test(text), text);
    assert.deepEqual(
      parseCsvRecords(text).records.map((r) => r.v),
      values.filter((v) => v !== ""),
    );
  });
});

describe("output", () => {
  it("scales a sparkline from 0 to the largest value", () => {
    assert.equal(sparkline([0, 1, 2, 3, 4, 5, 6, 7]), "▁▂▃▄▅▆▇█");
    assert.equal(sparkline([0, 0, 0]), "▁▁▁");
    assert.equal(sparkline([5, 10]), "▄█");
  });

  it("replaces control characters in every cell, right-aligns numbers", () => {
    assert.equal(cell("a\u001b[2Jb\u0007\u009b"), "a�[2Jb��");
    assert.equal(
      formatTable([
        { name: "x", n: 5 },
        { name: "long", n: 100 },
      ]),
      "NAME    N\nx       5\nlong  100",
    );
  });
});

describe("flags", () => {
  it("reads durations in seconds, minutes, hours and days", () => {
    assert.deepEqual(["90", "90s", "15m", "24h", "7d"].map(duration), [90, 90, 900, 86_400, 604_800]);
    assert.throws(() => duration("1w"));
  });

  it("takes each of URL and token from the flag, else the environment, else the file", () => {
    const file = { url: "http://file", token: "file" };
    assert.deepEqual(resolveTarget({}, {}, file), { url: "http://file", token: "file" });
    assert.deepEqual(resolveTarget({}, { GW_ADMIN_TOKEN: "env" }, file), {
      url: "http://file",
      token: "env",
    });
    assert.deepEqual(resolveTarget({ url: "http://flag/" }, { GW_URL: "http://env" }, file), {
      url: "http://flag",
      token: "file",
    });
    assert.throws(() => resolveTarget({ url: "ftp://x" }, {}, {}), /not an http\(s\) URL/);
  });
});
