// What the browser keeps between visits, in IndexedDB on the service's own origin: the member's signing key (a
// non-extractable WebCrypto key: scripts can sign with it but never read it), the last checkpoint verified, and the
// fingerprint of the trust anchors the reader pinned (pinning.js).

const DATABASE = "mutual-ledger";
const VERSION = 2;
const STORES = ["keys", "checkpoints", "anchors"];

function open() {
  return new Promise((resolve, reject) => {
    const request = indexedDB.open(DATABASE, VERSION);
    request.onupgradeneeded = () => {  // a browser of version 1 gains the stores it lacks, keeping the others
      for (const name of STORES) {
        if (!request.result.objectStoreNames.contains(name)) request.result.createObjectStore(name);
      }
    };
    request.onsuccess = () => resolve(request.result);
    request.onerror = () => reject(request.error);
  });
}

async function run(store, mode, action) {
  const database = await open();
  try {
    return await new Promise((resolve, reject) => {
      const transaction = database.transaction(store, mode);
      const request = action(transaction.objectStore(store));
      transaction.oncomplete = () => resolve(request.result);
      transaction.onerror = () => reject(transaction.error);
      transaction.onabort = () => reject(transaction.error);
    });
  } finally {
    database.close();
  }
}

/** Keep the member's key record ({privateKey: CryptoKey, keyId, publicKey}) under a name. */
export function saveKey(name, record) {
  return run("keys", "readwrite", (store) => store.put(record, name));
}

/** The key record kept under a name, or undefined. */
export function loadKey(name) {
  return run("keys", "readonly", (store) => store.get(name));
}

/** Forget a key (signing out). */
export function deleteKey(name) {
  return run("keys", "readwrite", (store) => store.delete(name));
}

/** Remember the last checkpoint note verified for a log origin. */
export function rememberCheckpoint(origin, note) {
  return run("checkpoints", "readwrite", (store) => store.put(note, origin));
}

/** The checkpoint note last verified for a log origin, or undefined. */
export function rememberedCheckpoint(origin) {
  return run("checkpoints", "readonly", (store) => store.get(origin));
}

/** Pin the trust anchors' fingerprint for a log origin. */
export function savePin(origin, fingerprint) {
  return run("anchors", "readwrite", (store) => store.put(fingerprint, origin));
}

/** The fingerprint pinned for a log origin, or undefined. */
export function loadPin(origin) {
  return run("anchors", "readonly", (store) => store.get(origin));
}

/** Forget the pinned fingerprint of a log origin. */
export function deletePin(origin) {
  return run("anchors", "readwrite", (store) => store.delete(origin));
}
