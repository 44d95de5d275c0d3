// What a story imports: `import { … } from './lib/index.mjs'`.
//
//   harness.mjs  the tools: the twostep server and CLI, Chromium, screenshots, QR codes, diagnostics
//   story.mjs    a story file's hooks and tests
//   steps.mjs    page steps: goto, submit, expectPath, fill, text, alerts and notices
//   flows.mjs    account flows: sign up, sign in (password, code), sign out, enrol TOTP,
//                re-auth, the dev outbox and e-mail verification
//   totp.mjs     the user's authenticator app (oathtool)

export * from './harness.mjs';
export * from './story.mjs';
export * from './steps.mjs';
export * from './flows.mjs';
export * from './totp.mjs';
