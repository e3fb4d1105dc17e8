// Lint rules for the call page's modules (static/) and their node tests
// (jstest/). Paths are relative to internal/ui, where eslint runs:
// `cd internal/ui && _check/node_modules/.bin/eslint -c _check/eslint.config.js .`
// (npm run lint in _check does that; so do .ci/run and TestJavaScriptChecks).
import js from "@eslint/js";
import globals from "globals";

export default [
  { ignores: ["_check/node_modules/"] },
  js.configs.recommended,
  {
    files: ["static/**/*.js"],
    languageOptions: { ecmaVersion: 2023, sourceType: "module", globals: { ...globals.browser } },
  },
  {
    files: ["jstest/**/*.mjs", "_check/eslint.config.js"],
    languageOptions: { ecmaVersion: 2023, sourceType: "module", globals: { ...globals.node } },
  },
  {
    rules: {
      "no-unused-vars": ["error", { argsIgnorePattern: "^_", caughtErrors: "none" }],
      eqeqeq: ["error", "always"],
      "no-var": "error",
      "prefer-const": "error",
    },
  },
];
