// Sign-in page: Firebase Authentication in the browser, then one exchange of the ID token for a server session.
import { initializeApp } from "firebase/app";
import {
  getAuth,
  connectAuthEmulator,
  signInWithEmailAndPassword,
  GoogleAuthProvider,
  signInWithPopup,
  signOut,
} from "firebase/auth";
import { csrfToken } from "./csrf.js";

const config = JSON.parse(document.getElementById("firebase-config").textContent);
const form = document.getElementById("signin-form");
const status = document.getElementById("signin-status");
const googleButton = document.getElementById("signin-google");

const app = initializeApp({ apiKey: config.apiKey, projectId: config.projectId, authDomain: config.authDomain });
const auth = getAuth(app);
if (config.emulatorUrl) connectAuthEmulator(auth, config.emulatorUrl, { disableWarnings: true });

const MESSAGES = {
  "auth/invalid-credential": "The email or password is not right.",
  "auth/invalid-login-credentials": "The email or password is not right.",
  "auth/wrong-password": "The email or password is not right.",
  "auth/user-not-found": "The email or password is not right.",
  "auth/invalid-email": "That is not a valid email address.",
  "auth/missing-password": "Enter your password.",
  "auth/user-disabled": "This account is disabled. Ask your lab administrator.",
  "auth/too-many-requests": "Too many attempts. Wait a few minutes and try again.",
  "auth/network-request-failed": "The sign-in service cannot be reached. Check the connection and try again.",
  "auth/popup-closed-by-user": "The Google sign-in window was closed before signing in.",
  "auth/popup-blocked": "The browser blocked the Google sign-in window. Allow pop-ups for this site and try again.",
};

function say(message, isError = true) {
  status.textContent = message;
  status.classList.toggle("error", isError);
}

function busy(on) {
  for (const control of document.querySelectorAll("#signin-form button, #signin-google")) control.disabled = on;
  form.setAttribute("aria-busy", on ? "true" : "false");
}

async function exchange(user) {
  const idToken = await user.getIdToken();
  let response;
  try {
    response = await fetch(form.dataset.sessionUrl, {
      method: "POST",
      credentials: "same-origin",
      headers: { "Content-Type": "application/json", Accept: "application/json", "X-CSRFToken": csrfToken() },
      body: JSON.stringify({ id_token: idToken, next: form.dataset.next }),
    });
  } finally {
    // The server session is what counts from here on; the browser keeps no Firebase sign-in.
    await signOut(auth).catch(() => {});
  }
  const body = await response.json().catch(() => ({}));
  if (!response.ok) {
    const reason = response.status === 403 ? "The page expired: reload it and sign in again." : body.detail;
    throw new Error(reason || `Signing in failed (HTTP ${response.status}).`);
  }
  window.location.assign(body.redirect || form.dataset.next || "/");
}

async function attempt(signIn) {
  busy(true);
  say("Signing in…", false);
  try {
    const credential = await signIn();
    await exchange(credential.user);
  } catch (error) {
    say(MESSAGES[error.code] || error.message || "Signing in failed.");
    busy(false);
  }
}

form.addEventListener("submit", (event) => {
  event.preventDefault();
  const email = document.getElementById("signin-email").value.trim();
  const password = document.getElementById("signin-password").value;
  if (!email || !password) {
    say("Enter your email and password.");
    return;
  }
  attempt(() => signInWithEmailAndPassword(auth, email, password));
});

if (googleButton) {
  googleButton.addEventListener("click", () => attempt(() => signInWithPopup(auth, new GoogleAuthProvider())));
}
