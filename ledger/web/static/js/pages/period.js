// The 公示 page: "verify this disclosure" checks, in this browser, the document shown against the signed
// `disclosure.published` event, its signature and its inclusion in the checkpoint (disclosure.js). The verifier is
// loaded only when the button is pressed.

import { anchorsToTrust, setUpAnchors } from "./anchors.js";
import { data, el, get, showChecklist, t } from "./common.js";

const button = document.getElementById("verify-disclosure");
const result = document.getElementById("verify-result");

button?.addEventListener("click", async () => {
  button.disabled = true;
  result.className = "result";
  result.textContent = t("verifying");
  try {
    const [{ checkDisclosure }, { trustOf, underPolicy }] = await Promise.all([import("../disclosure.js"),
      import("../history.js")]);
    if ((await anchorsToTrust()).status === "mismatch") {
      result.className = "result failed";
      result.textContent = t("anchors_refused");
      return;
    }
    const trust = await trustOf(data.anchors);
    const disclosure = await (await get(`/api/v1/periods/${data.period}/disclosure`)).json();
    const report = await underPolicy(disclosure.event?.checkpoint?.note, trust,
      (witnesses) => checkDisclosure(disclosure, trust.logKey, witnesses));
    showChecklist(document.getElementById("checklist"), report);
    result.className = `result ${report.ok ? "ok" : "failed"}`;
    result.replaceChildren(report.ok ? t("disclosure_verified") : t("disclosure_failed",
      { step: t(`step_${report.failing_step.replace(".", "_")}`) }), report.ok ? el("code", {}, ` ${disclosure.document_hash}`) : "");
  } catch (error) {
    result.className = "result failed";
    result.textContent = `${t("verify_error")} ${error.message}`;
  } finally {
    button.disabled = false;
  }
});

if (button) setUpAnchors();
