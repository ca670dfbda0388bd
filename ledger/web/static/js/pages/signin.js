// Signing in with the reader's own key file: imported once as a non-extractable WebCrypto key (httpsig.js), kept
// in IndexedDB (keystore.js), and used to sign every request to the member's, custodian's or regulator's routes.

import { importKeyFile, signedFetch } from "../httpsig.js";
import { deleteKey, loadKey, saveKey } from "../keystore.js";
import { answer, t } from "./common.js";

/** GET (or another method) with the request signed by the signed-in key; the response once it is 2xx. */
export async function signed(key, path, init = {}) {
  return answer(await signedFetch(new URL(path, location.origin).href, init, key));
}

const KEY_NAME = "reader";

/**
 * The sign-in of a page for `role`: the key kept from an earlier visit, or the key file chosen now (imported
 * non-extractable, checked with the service as that role, then kept). Calls `onSignedIn(key, identity)` once
 * signed in; shows errors in the page.
 */
export async function signIn(role, onSignedIn) {
  const form = document.getElementById("signin");
  const signedIn = document.getElementById("signed-in");
  const error = document.getElementById("signin-error");
  const input = document.getElementById("key-file");

  // `keep`: a key chosen now is kept once the service has accepted it and before the page shows it signed in, so
  // that whatever follows the sign-in (a reload, another page) finds it.
  async function enter(key, keep) {
    const identity = await (await signed(key, "/api/v1/me")).json();
    if (identity.role !== role) throw new Error(t("signin_wrong_role", { role: identity.role }));
    if (keep) await saveKey(KEY_NAME, key);
    form.hidden = true;
    signedIn.hidden = false;
    document.getElementById("who").textContent = identity.member ?? identity.key_id;
    await onSignedIn(key, identity);
  }

  document.getElementById("signout").addEventListener("click", async () => {
    await deleteKey(KEY_NAME);
    location.reload();
  });
  input.addEventListener("change", async () => {
    error.textContent = "";
    try {
      const key = await importKeyFile(await input.files[0].text());
      await enter(key, true);
    } catch (failure) {
      error.textContent = `${t("signin_failed")} ${failure.message}`;
    }
  });
  const kept = await loadKey(KEY_NAME);
  if (kept) {
    try {
      await enter(kept, false);
    } catch (failure) {
      error.textContent = `${t("signin_failed")} ${failure.message}`;
    }
  }
}

