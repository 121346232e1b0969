// Makes the Admin UI copied into ui/ by vendor-ui.sh work offline: copies
// the web fonts its page links from CDNs (Roboto, npm
// @fontsource-variable/roboto; Material Design Icons, npm @mdi/font) into
// ui/fonts/ as woff2 with their licences, writes ui/fonts/fonts.HASH.css
// for them, and points ui/index.html at it instead of the CDNs.
//   node vendor-fonts.js NODE_MODULES UI_DIR
// Roboto: the variable font (weights 100 to 900 in one file) of the latin
// and latin-ext subsets, under the family name "Roboto" the UI asks for.
// Icons: the whole woff2, and of the icon classes of @mdi/font's CSS only
// those the UI's scripts and styles name (the rest of the CSS is kept).
// File names carry a hash of their content: the server serves them as
// immutable. Fails when the page's CDN links are not the expected ones.
"use strict";
const fs = require("fs");
const path = require("path");
const crypto = require("crypto");

const [modules, ui] = process.argv.slice(2);
const out = path.join(ui, "fonts");
fs.mkdirSync(out, { recursive: true });

const hash = (data) => crypto.createHash("sha256").update(data).digest("hex").slice(0, 8);
// copy copies src into ui/fonts/ under a hashed name, and returns that name
function copy(src) {
  const data = fs.readFileSync(src);
  const ext = path.extname(src);
  const name = path.basename(src, ext) + "." + hash(data) + ext;
  fs.writeFileSync(path.join(out, name), data);
  return name;
}

// Roboto: the @font-face rules of the subsets kept, renamed and pointed at the copies
const roboto = path.join(modules, "@fontsource-variable/roboto");
const wght = fs.readFileSync(path.join(roboto, "wght.css"), "utf8");
let css = "/* Roboto (@fontsource-variable/roboto " + require(path.join(roboto, "package.json")).version +
  ", SIL Open Font License 1.1: LICENSE-roboto) */\n";
for (const subset of ["latin-ext", "latin"]) {
  const file = "roboto-" + subset + "-wght-normal.woff2";
  const rule = wght.match(new RegExp("@font-face \\{[^}]*url\\(\\./files/" + file.replace(/\./g, "\\.") + "\\)[^}]*\\}"));
  if (!rule) throw new Error("no @font-face for " + file + " in " + roboto + "/wght.css");
  css += rule[0].replace("'Roboto Variable'", "'Roboto'").replace("./files/" + file, copy(path.join(roboto, "files", file))) + "\n";
}
fs.copyFileSync(path.join(roboto, "LICENSE"), path.join(out, "LICENSE-roboto"));

// Material Design Icons: the woff2 only, and the icon classes the UI names
const mdi = path.join(modules, "@mdi/font");
const used = new Set();
for (const dir of ["js", "css"]) {
  for (const f of fs.readdirSync(path.join(ui, dir))) {
    for (const m of fs.readFileSync(path.join(ui, dir, f), "utf8").matchAll(/\bmdi-([a-z0-9-]+)/g)) used.add(m[1]);
  }
}
const icons = copy(path.join(mdi, "fonts/materialdesignicons-webfont.woff2"));
let mdiCSS = fs.readFileSync(path.join(mdi, "css/materialdesignicons.min.css"), "utf8").replace(/\/\*# sourceMappingURL=.*?\*\//, "");
const face = /@font-face\{font-family:"Material Design Icons";[^}]*\}/;
if (!face.test(mdiCSS)) throw new Error("no @font-face in @mdi/font's CSS");
mdiCSS = mdiCSS.replace(face, '@font-face{font-family:"Material Design Icons";src:url("' + icons + '") format("woff2");font-weight:normal;font-style:normal}');
let kept = 0;
mdiCSS = mdiCSS.replace(/\.mdi-([a-z0-9-]+)::before\{content:"\\[0-9A-F]+"\}/g, (rule, name) => (used.has(name) ? (kept++, rule) : ""));
const missing = [...used].filter((n) => !mdiCSS.includes(".mdi-" + n + ":"));
css += "/* Material Design Icons (@mdi/font " + require(path.join(mdi, "package.json")).version +
  ", Pictogrammers Free License, fonts under Apache 2.0: LICENSE-materialdesignicons); the " + kept +
  " icon classes the UI names */\n" + mdiCSS + "\n";
fs.copyFileSync(path.join(mdi, "LICENSE"), path.join(out, "LICENSE-materialdesignicons"));
const cssName = "fonts." + hash(css) + ".css";
fs.writeFileSync(path.join(out, cssName), css);

// the page: the two CDN links become one to ui/fonts/
const indexFile = path.join(ui, "index.html");
let index = fs.readFileSync(indexFile, "utf8");
const cdn = /<link rel="stylesheet" href="https:\/\/fonts\.googleapis\.com\/css\?family=Roboto:[0-9,]+"><link rel="stylesheet" href="https:\/\/cdn\.jsdelivr\.net\/npm\/@mdi\/font@latest\/css\/materialdesignicons\.min\.css">/;
if (!cdn.test(index)) throw new Error("the UI's index.html does not link the fonts as expected: check vendor-fonts.js");
index = index.replace(cdn, '<link rel="stylesheet" href="fonts/' + cssName + '">');
if (/(href|src)="(https?:)?\/\//.test(index)) throw new Error("index.html still links another host");
fs.writeFileSync(indexFile, index);
process.stderr.write("fonts: " + kept + " icon classes of " + used.size + " names kept" +
  (missing.length ? " (not icons: " + missing.join(" ") + ")" : "") + "\n");
