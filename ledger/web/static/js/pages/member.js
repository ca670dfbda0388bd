// The member's page: signed in with their own key, the 爱心账单 from the service, and "Verify my history" — the
// proof bundle checked in this browser (history.js), the checkpoint compared with the one it verified last time,
// and a misbehaviour alert with downloadable evidence when the log contradicts what this browser saw before.

import { anchorsToTrust, LOG_ORIGIN, setUpAnchors } from "./anchors.js";
import { data, facts, get, rows, showChecklist, t, yuan } from "./common.js";
import { signIn, signed } from "./signin.js";

function showStatement(statement) {
  facts(document.getElementById("statement-facts"), [
    [t("days_in_plan"), statement.days_in_plan],
    [t("periods_paid_into"), statement.periods_paid_into],
    [t("total_shared"), `¥${yuan(statement.shared_fen)}`],
    [t("people_helped"), statement.people_helped],
    [t("top_ups"), `¥${yuan(statement.top_ups_fen)}`],
    [t("refunds"), `¥${yuan(statement.refunds_paid_fen)}`],
    [t("balance"), `¥${yuan(statement.balance_fen)}`],
    ...(statement.due_fen ? [[t("due"), `¥${yuan(statement.due_fen)}`]] : []),
  ]);
  rows(document.getElementById("claims"), statement.claims.map((c) => [c.condition, c.diagnosed_month,
    t(`decision_${c.decision}`), { text: `¥${yuan(c.paid_fen)}`, className: "num" }]));
  document.getElementById("statement").hidden = false;
}

function showAlert(result) {
  const alert = document.getElementById("alert");
  document.getElementById("alert-detail").textContent = result.problem;
  document.getElementById("alert-checkpoints").textContent =
    `${result.evidence.older_checkpoint}\n${result.evidence.newer_checkpoint}`;
  const link = document.getElementById("evidence");
  link.href = URL.createObjectURL(new Blob([`${JSON.stringify(result.evidence, null, 2)}\n`],
    { type: "application/json" }));
  alert.hidden = false;
}

async function verify(key, member) {
  const result = document.getElementById("history-result");
  const button = document.getElementById("verify-history");
  button.disabled = true;
  result.className = "result";
  result.textContent = t("verifying");
  document.getElementById("alert").hidden = true;
  const started = performance.now();
  try {
    const [{ checkHistory, checkAgainstRemembered, trustOf }, keystore] = await Promise.all([
      import("../history.js"), import("../keystore.js")]);
    if ((await anchorsToTrust()).status === "mismatch") {
      result.className = "result failed";
      result.textContent = t("anchors_refused");
      return;
    }
    const trust = await trustOf(data.anchors);
    const bundle = await (await signed(key, `/api/v1/members/${member}/bundle`)).json();
    const fetched = performance.now();
    result.dataset.fetchMs = String(Math.round(fetched - started));
    const report = await checkHistory(bundle, trust);
    showChecklist(document.getElementById("checklist"), report);
    if (!report.ok) {
      result.className = "result failed";
      result.textContent = t("history_failed", { step: t(`step_${report.failing_step.replace(".", "_")}`) });
      return;
    }
    const remembered = await keystore.rememberedCheckpoint(LOG_ORIGIN);
    const seen = await checkAgainstRemembered(remembered, bundle.checkpoint, trust.logKey, async (old, size) =>
      (await (await get(`/api/v1/log/proofs/consistency?old=${old}&size=${size}`)).json()).proof);
    if (seen.status === "inconsistent") {
      showAlert(seen);
      result.className = "result failed";
      result.textContent = t("history_fork");
      return;
    }
    if (seen.status === "refused") {
      result.className = "result failed";
      result.textContent = `${t("history_refused")} ${seen.problem}`;
      return;
    }
    await keystore.rememberCheckpoint(LOG_ORIGIN, bundle.checkpoint);
    result.dataset.checkMs = String(Math.round(performance.now() - fetched));
    const s = report.statement;
    result.className = "result ok";
    result.textContent = t(seen.status === "first" ? "history_verified_first" : "history_verified",
      { size: s.checkpoint_size });
    document.getElementById("verified-summary").textContent = t("verified_summary", {
      periods: s.periods.length, shared: yuan(s.shared_fen), helped: s.people_helped,
      ms: Math.round(performance.now() - fetched), total: Math.round(performance.now() - started) });
  } catch (error) {
    result.className = "result failed";
    result.textContent = `${t("verify_error")} ${error.message}`;
  } finally {
    button.disabled = false;
  }
}

signIn("member", async (key, identity) => {
  showStatement(await (await signed(key, `/api/v1/members/${identity.member}/statement`)).json());
  document.getElementById("history").hidden = false;
  await setUpAnchors();
  document.getElementById("verify-history").addEventListener("click", () => verify(key, identity.member));
});
