// What every page's module shares: the page's data block, its messages, money as yuan, building elements, public
// requests and the ✓/✗ checklist of a verification. Signing in is in signin.js, loaded only by the pages that sign.

const block = document.getElementById("page-data");
export const data = block ? JSON.parse(block.textContent) : { messages: {} };

/** The message `key` in the page's language, with `{name}` placeholders filled. */
export function t(key, values = {}) {
  const text = data.messages[key] ?? key;
  return text.replace(/\{(\w+)\}/g, (whole, name) => (name in values ? String(values[name]) : whole));
}

/** Integer fen as yuan with two decimals and thousands separators (no float on the way). */
export function yuan(fen) {
  if (fen === null || fen === undefined) return "–";
  const negative = fen < 0;
  const whole = Math.floor(Math.abs(fen) / 100);
  const cents = Math.abs(fen) % 100;
  return `${negative ? "-" : ""}${whole.toLocaleString("en-US")}.${String(cents).padStart(2, "0")}`;
}

/** An element with attributes and children (strings become text: nothing is parsed as HTML). */
export function el(tag, attributes = {}, ...children) {
  const element = document.createElement(tag);
  for (const [name, value] of Object.entries(attributes)) {
    if (value !== null && value !== undefined && value !== false) element.setAttribute(name, String(value));
  }
  for (const child of children.flat()) {
    if (child !== null && child !== undefined) element.append(child instanceof Node ? child : String(child));
  }
  return element;
}

/** Fill a <dl> with [term, value] pairs. */
export function facts(list, pairs) {
  list.replaceChildren(...pairs.flatMap(([term, value]) => [el("dt", {}, term), el("dd", {}, value)]));
}

/** Fill a table's body with rows of cells; a cell may be {text, className}. */
export function rows(table, items) {
  table.tBodies[0].replaceChildren(...items.map((cells) => el("tr", {}, cells.map((cell) =>
    (cell !== null && typeof cell === "object" && !(cell instanceof Node)
      ? el("td", { class: cell.className }, cell.text) : el("td", {}, cell))))));
}

/** An error thrown by an API call: its problem details' detail, field and rule when it has them. */
export class ApiError extends Error {
  constructor(status, problem) {
    super(problem?.field ? `${problem.field}: ${problem.rule} (${problem.detail ?? problem.title})`
      : (problem?.detail ?? problem?.title ?? `HTTP ${status}`));
    this.status = status;
    this.problem = problem;
  }
}

/** The response once it is 2xx; else an ApiError with its problem details. */
export async function answer(response) {
  if (response.ok) return response;
  let problem = null;
  try {
    problem = await response.json();
  } catch {
    // not problem details: the status says it
  }
  throw new ApiError(response.status, problem);
}

/** A public GET; the response once it is 2xx. */
export async function get(path) {
  return answer(await fetch(path));
}

/** Describe what a finding is about: an event, a witness, a stream or a roll. */
function subjectText(subject) {
  if (!subject) return "";
  if (subject.type !== undefined && subject.index !== undefined) {
    return t("subject_event", { index: subject.index, type: subject.type ?? "?", seq: subject.seq ?? "?" });
  }
  if (subject.witness) return t("subject_witness", { witness: subject.witness });
  if (subject.witnesses) return subject.witnesses.length ? subject.witnesses.join(", ") : "";
  if (subject.roll !== undefined) return t("subject_roll", { period: subject.period });
  if (subject.period) return t("subject_period", { period: subject.period });
  if (subject.stream) return t("subject_stream", { stream: subject.stream });
  return "";
}

/**
 * Show a report's findings as a ✓/✗ checklist: one line per step with how many things it checked, and every failed
 * check on a line of its own naming the event and the check.
 */
export function showChecklist(list, report) {
  const steps = new Map();
  for (const finding of report.findings) {
    const entry = steps.get(finding.step) ?? { passed: 0, failed: [] };
    if (finding.ok) entry.passed += 1; else entry.failed.push(finding);
    steps.set(finding.step, entry);
  }
  list.replaceChildren(...[...steps].map(([step, { passed, failed }]) => {
    const ok = failed.length === 0;
    return el("li", { class: ok ? "ok" : "failed", "data-step": step },
      el("span", { class: "mark", "aria-label": ok ? t("passed") : t("failed") }, ok ? "✓" : "✗"), " ",
      el("span", { class: "step" }, t(`step_${step.replace(".", "_")}`)), " ",
      el("span", { class: "count" }, t("checked_n", { n: passed + failed.length })),
      failed.length ? el("ul", { class: "failures" }, failed.map((f) =>
        el("li", { "data-step": f.step }, el("strong", {}, subjectText(f.subject)), " ", f.detail))) : null);
  }));
}
