// Lint holds the walls of the house (docs/architecture.md, "Walls"): typescript-eslint's recommended rules,
// dependencies declared where they are used, and no reaching into another package's source.
import js from "@eslint/js";
import tseslint from "typescript-eslint";
import importX from "eslint-plugin-import-x";
import globals from "globals";
import walls, { missingRooms } from "./eslint/walls.js";

// A room renamed or removed must be renamed in eslint/walls.js too, or the walls would silently fall.
const missing = missingRooms();
if (missing.length) throw new Error(`eslint/walls.js lists rooms that do not exist: ${missing.join(", ")}`);

/** Files that may use devDependencies: tests, benches, test support, scripts and configs. Never src/. */
const DEV_FILES = [
  "**/test/**",
  "**/bench/**",
  "test-support/**",
  "scripts/**",
  "eslint/**",
  "*.config.js",
  "packages/e2e/src/**",
];

export default tseslint.config(
  { ignores: ["**/node_modules/**", "packages/proto/src/gen/**", ".dev/**", "**/dist/**"] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    files: ["**/*.{ts,js,mjs}"],
    languageOptions: { globals: { ...globals.node } },
    plugins: { "import-x": importX, diego: walls },
    rules: {
      "@typescript-eslint/no-unused-vars": [
        "error",
        { argsIgnorePattern: "^_", varsIgnorePattern: "^_", caughtErrors: "none" },
      ],
      "@typescript-eslint/no-non-null-assertion": "off",
      // A variable a closure reads before its one assignment (a server's handler and the object it starts) stays `let`.
      "prefer-const": ["error", { ignoreReadBeforeAssign: true }],
      "@typescript-eslint/no-explicit-any": "error",
      "import-x/no-extraneous-dependencies": [
        "error",
        { devDependencies: DEV_FILES, optionalDependencies: false, peerDependencies: false },
      ],
      "diego/floors": "error",
      "diego/rooms": "error",
      "no-restricted-imports": [
        "error",
        {
          patterns: [
            {
              group: ["@diego/*/src/*", "@diego/*/src"],
              message: "Import another package by its name, never its src/.",
            },
            {
              group: ["../../*/src/*", "../../../*/src/*", "../../../../*/src/*"],
              message: "Import another package by its name, never by a relative path into its src/.",
            },
          ],
        },
      ],
    },
  },
);
