// The regulator's page: the queries (cases, periods, refunds) with filters and CSV download, the metrics as charts,
// and publishing a report — drafted by the service, checked here (the event hash recomputed from the envelope, the
// document's hash against the one it pins), and signed with the regulator's own key, which never leaves the browser.

import { sha256, toHex } from "../bytes.js";
import { eventHashOf, signEventHash } from "../envelope.js";
import { canonicalBytes } from "../jcs.js";
import { el, get, t, yuan } from "./common.js";
import { signIn, signed } from "./signin.js";

const SVG = "http://www.w3.org/2000/svg";

function svg(tag, attributes = {}, ...children) {
  const node = document.createElementNS(SVG, tag);
  for (const [name, value] of Object.entries(attributes)) node.setAttribute(name, String(value));
  node.append(...children);
  return node;
}

/** A bar chart of values by label, drawn as SVG (no library). */
function barChart(title, points, format) {
  const width = 640;
  const height = 220;
  const left = 56;
  const bottom = 28;
  const top = 12;
  const high = Math.max(1, ...points.map((p) => p.value));
  const step = (width - left - 8) / Math.max(1, points.length);
  const chart = svg("svg", { class: "chart", viewBox: `0 0 ${width} ${height}`, role: "img" }, svg("title", {}, title));
  chart.append(svg("text", { class: "axis", x: left - 6, y: top + 8, "text-anchor": "end" }, format(high)));
  chart.append(svg("line", { class: "grid", x1: left, x2: width - 8, y1: height - bottom, y2: height - bottom }));
  points.forEach((p, i) => {
    const h = (height - top - bottom) * p.value / high;
    const bar = svg("rect", { class: "bar", x: left + i * step + step * 0.15, y: height - bottom - h,
      width: step * 0.7, height: h });
    bar.append(svg("title", {}, `${p.label}: ${format(p.value)}`));
    chart.append(bar);
    if (i % Math.max(1, Math.floor(points.length / 12)) === 0) {
      chart.append(svg("text", { class: "axis", x: left + i * step + step / 2, y: height - 10,
        "text-anchor": "middle" }, p.label));
    }
  });
  return el("figure", { class: "chart-box" }, chart, el("figcaption", {}, title));
}

async function metrics() {
  const all = await (await get("/api/v1/metrics")).json();
  const plans = await (await get("/api/v1/plans?limit=500")).json();
  const names = Object.fromEntries(plans.items.map((p) => [p.id, p.name]));
  const charts = document.getElementById("charts");
  charts.replaceChildren(...all.plans.flatMap((plan) => {
    const periods = plan.periods.filter((p) => p.share_fen !== null);
    return [
      barChart(t("metric_share", { plan: names[plan.plan] ?? plan.plan }),
        periods.map((p) => ({ label: String(p.number), value: p.share_fen })), (v) => yuan(v)),
      barChart(t("metric_cases", { plan: names[plan.plan] ?? plan.plan }),
        periods.map((p) => ({ label: String(p.number), value: p.cases ?? 0 })), (v) => String(v)),
    ];
  }));
}

function cell(value) {
  if (value === null || value === undefined) return "";
  return typeof value === "object" ? JSON.stringify(value) : String(value);
}

function csvOf(columns, items) {
  const quote = (text) => (/[",\n\r]/.test(text) ? `"${text.replace(/"/g, '""')}"` : text);
  return [columns.join(","), ...items.map((item) => columns.map((c) => quote(cell(item[c]))).join(","))]
    .join("\n") + "\n";
}

async function query(key, form) {
  const result = document.getElementById("query-result");
  const values = new FormData(form);
  const kind = values.get("kind");
  const params = new URLSearchParams();
  const allowed = { cases: ["plan", "from", "to", "reason"], periods: ["plan", "from", "to"],
    refunds: ["plan", "status"] }[kind];
  for (const name of allowed) if (values.get(name)) params.set(name, values.get(name));
  params.set("limit", "500");
  try {
    const items = [];
    let cursor = null;
    do {
      if (cursor) params.set("cursor", cursor);
      const page = await (await signed(key, `/api/v1/regulator/${kind}?${params}`)).json();
      items.push(...page.items);
      cursor = page.next_cursor;
    } while (cursor);
    const columns = items.length ? Object.keys(items[0]) : [];
    const table = document.getElementById("rows");
    table.tHead.replaceChildren(el("tr", {}, columns.map((c) => el("th", {}, c))));
    table.tBodies[0].replaceChildren(...items.map((item) => el("tr", {}, columns.map((c) => el("td", {},
      cell(item[c]))))));
    const link = document.getElementById("csv");
    link.href = URL.createObjectURL(new Blob([csvOf(columns, items)], { type: "text/csv" }));
    link.download = `${kind}.csv`;
    link.hidden = false;
    result.className = "result";
    result.textContent = t("rows_found", { n: items.length });
  } catch (error) {
    result.className = "result failed";
    result.textContent = `${t("verify_error")} ${error.message}`;
  }
}

async function publish(key, form) {
  const result = document.getElementById("report-result");
  const values = new FormData(form);
  result.className = "result";
  result.textContent = t("verifying");
  try {
    const draft = await (await signed(key, "/api/v1/regulator/reports/drafts", { method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ from: values.get("from"), to: values.get("to") }) })).json();
    const eventHash = await eventHashOf(draft.envelope);
    if (toHex(eventHash) !== draft.event_hash) throw new Error("the draft's event hash is not its envelope's");
    const documentHash = toHex(await sha256(canonicalBytes(draft.document)));
    if (documentHash !== draft.envelope.body.document_hash) throw new Error("the draft pins another document");
    if (draft.envelope.actor.key !== key.keyId) throw new Error("the draft is not for this key");
    const envelope = { ...draft.envelope, sig: await signEventHash(key.privateKey, eventHash) };
    const published = await (await signed(key, "/api/v1/regulator/reports", { method: "POST",
      headers: { "Content-Type": "application/json" }, body: JSON.stringify({ envelope }) })).json();
    result.className = "result ok";
    result.textContent = `✓ ${t("report_published", { hash: published.document_hash })}`;
  } catch (error) {
    result.className = "result failed";
    result.textContent = `✗ ${error.message}`;
  }
}

signIn("regulator", async (key) => {
  document.getElementById("work").hidden = false;
  const form = document.getElementById("query");
  form.addEventListener("submit", (event) => { event.preventDefault(); query(key, form); });
  const report = document.getElementById("report");
  report.addEventListener("submit", (event) => { event.preventDefault(); publish(key, report); });
  await metrics();
});
