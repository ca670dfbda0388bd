// The trust anchors' box on the pages that verify (the member's "Verify my history", the 公示's "verify this
// disclosure"): the fingerprint of what the browser trusts, whether it is pinned, the pin and unpin buttons, and the
// alert when the served anchors do not match the pin or the link (pinning.js). A page verifies only after
// `anchorsToTrust()` says the anchors may be used.

import { data, t } from "./common.js";

export const LOG_ORIGIN = `${location.origin}/log`;

const STATUS_MESSAGES = { pinned: "anchors_pinned", "pinned-now": "anchors_pinned_now", unpinned: "anchors_unpinned" };

function show(state, pinning) {
  const box = document.getElementById("anchors");
  if (!box) return;
  document.getElementById("anchors-fingerprint").textContent = pinning.grouped(state.fingerprint);
  const mismatch = state.status === "mismatch";
  const status = document.getElementById("anchors-status");
  status.textContent = mismatch ? "" : t(STATUS_MESSAGES[state.status]);
  status.dataset.status = state.status;
  document.getElementById("anchors-pin").hidden = state.status !== "unpinned";
  // something pinned may be forgotten — also when it no longer matches (a change the plan announced): the next
  // visit is then a first one, to compare and pin again
  document.getElementById("anchors-unpin").hidden = !(state.status === "pinned" || state.status === "pinned-now"
    || (mismatch && state.source === "pin"));
  document.getElementById("anchors-alert").hidden = !mismatch;
  if (mismatch) {
    document.getElementById("anchors-alert-detail").textContent = t(
      state.source === "link" ? "anchors_mismatch_link" : "anchors_mismatch_pin",
      { fingerprint: pinning.grouped(state.fingerprint), expected: pinning.grouped(state.expected) });
  }
  box.hidden = false;
}

/** Check the served anchors against the pin and the link, show the box, and return the state (pinning.checkPin). */
export async function anchorsToTrust() {
  const pinning = await import("../pinning.js");
  const state = await pinning.checkPin(data.anchors, location.hash, LOG_ORIGIN);
  show(state, pinning);
  return state;
}

/** Set up the box once the page loads: its state now, and the pin and unpin buttons. */
export async function setUpAnchors() {
  if (!document.getElementById("anchors") || !data.anchors?.log) return;
  const pinning = await import("../pinning.js");
  document.getElementById("anchors-pin").addEventListener("click", async () => {
    await pinning.pin(LOG_ORIGIN, await pinning.fingerprintOf(data.anchors));
    await anchorsToTrust();
  });
  document.getElementById("anchors-unpin").addEventListener("click", async () => {
    await pinning.unpin(LOG_ORIGIN);
    history.replaceState(null, "", location.pathname + location.search);  // a link's fragment would pin again
    await anchorsToTrust();
  });
  await anchorsToTrust();
}
