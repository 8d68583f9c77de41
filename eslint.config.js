// Lint holds the walls of the house (docs/architecture.md, "Walls"): typescript-eslint's recommended rules,
// dependencies declared where they are used, and no reaching into another package's source.
import js from "@eslint/js";
import tseslint from "typescript-eslint";
import importX from "eslint-plugin-import-x";
import globals from "globals";

export default tseslint.config(
  { ignores: ["**/node_modules/**", "packages/proto/src/gen/**", ".dev/**", "**/dist/**"] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    files: ["**/*.{ts,js,mjs}"],
    languageOptions: { globals: { ...globals.node } },
    plugins: { "import-x": importX },
    rules: {
      "@typescript-eslint/no-unused-vars": [
        "error",
        { argsIgnorePattern: "^_", varsIgnorePattern: "^_", caughtErrors: "none" },
      ],
      "@typescript-eslint/no-non-null-assertion": "off",
      "@typescript-eslint/no-explicit-any": "error",
      "import-x/no-extraneous-dependencies": "error",
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
