// Sessions expire (issue 22): agent-a signs in on a node whose sessions
// last a minute; a minute later the same browser, cookie kept, is
// anonymous again. Run by the e2e test `signin::a_session_expires`.
//
//   node expiry.mjs BASE_URL OUT_DIR

import { run, signIn } from "./common.mjs";

const [base, out] = process.argv.slice(2);
const t = await run(out);
const { page } = await t.localPage();

await t.step(page, "expiration", async () => {
  await signIn(page, base, "agent-a", "/recherche");
  await page.getByRole("link", { name: /Mon compte/ }).waitFor();
  t.expect((await page.locator("body").innerText()).includes("Réservé COLOMIERS"), "not signed in");
  await page.waitForTimeout(62_000);
  await page.goto(`${base}/recherche`);
  await page.getByRole("link", { name: "Se connecter" }).waitFor();
  t.expect(
    !(await page.locator("body").innerText()).includes("COLOMIERS"),
    "an expired session still sees the restricted record",
  );
});

await t.end("expiry-report.json");
