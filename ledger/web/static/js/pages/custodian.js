// The custodian's page: the fund's journal, the trial balance and custody check, the reconciliation of an uploaded
// bank statement (the service matches it; this page shows every finding), and which witnesses cosigned each
// published checkpoint — each cosignature verified here against the trust anchors' witness keys.

import { COSIGNATURE_V1, NoteError, parseVerifier, verifyCosignature } from "../note.js";
import { data, el, facts, get, rows, t, yuan } from "./common.js";
import { signIn, signed } from "./signin.js";

async function books(key) {
  const [journal, balance] = await Promise.all([
    signed(key, "/api/v1/custodian/journal").then((r) => r.json()),
    signed(key, "/api/v1/custodian/trial-balance").then((r) => r.json())]);
  facts(document.getElementById("balance"), [
    [t("trial_balance_value"), `¥${yuan(balance.trial_balance_fen)}`],
    [t("custody_gap"), `¥${yuan(balance.custody_gap_fen)}`],
    [t("balanced"), balance.balanced ? `✓ ${t("yes")}` : `✗ ${t("no")}`]]);
  rows(document.getElementById("journal"), Object.entries(journal.accounts).map(([account, fen]) =>
    [account, { text: `¥${yuan(fen)}`, className: "num" }]));
}

async function cosignatures() {
  const keys = await Promise.all((data.anchors?.witnesses?.keys ?? []).map(parseVerifier));
  const listed = [];
  let cursor = null;
  do {
    const page = await (await get(`/api/v1/log/checkpoints${cursor ? `?cursor=${cursor}` : ""}`)).json();
    listed.push(...page.items);
    cursor = page.next_cursor;
  } while (cursor);
  const shown = [];
  for (const checkpoint of listed.reverse()) {
    const names = [];
    for (const witness of keys) {
      try {
        await verifyCosignature(checkpoint.note, { ...witness, kind: COSIGNATURE_V1 });
        names.push(witness.name);
      } catch (error) {
        if (!(error instanceof NoteError)) throw error;
      }
    }
    shown.push([checkpoint.size, checkpoint.published_at, names.length ? `✓ ${names.join(", ")}` : "–"]);
  }
  rows(document.getElementById("cosignatures"), shown);
}

async function reconcile(key, file) {
  const result = document.getElementById("reconcile-result");
  result.className = "result";
  result.textContent = t("verifying");
  try {
    const body = await file.text();
    const found = await (await signed(key, "/api/v1/custodian/reconciliation", {
      method: "POST", headers: { "Content-Type": "text/csv" }, body })).json();
    const table = document.getElementById("findings");
    table.tBodies[0].replaceChildren(...found.findings.map((f) => el("tr", { "data-kind": f.kind },
      el("td", {}, f.kind), el("td", {}, f.reference), el("td", {}, f.detail))));
    result.className = `result ${found.ok ? "ok" : "failed"}`;
    result.textContent = `${found.ok ? "✓" : "✗"} ${t("reconciled", { n: found.findings.length,
      gap: yuan(found.custody_gap_fen) })}`;
  } catch (error) {
    result.className = "result failed";
    result.textContent = `${t("verify_error")} ${error.message}`;
  }
}

signIn("custodian", async (key) => {
  document.getElementById("work").hidden = false;
  const input = document.getElementById("statement-file");
  input.addEventListener("change", () => reconcile(key, input.files[0]));
  await Promise.all([books(key), cosignatures()]);
});
