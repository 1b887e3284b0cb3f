import { defineConfig } from "vitest/config"

// Each package's tests run from source: the "source" export condition resolves
// @movieapp/* imports to src/*.ts, as tsconfig.json does for the type checker.
export default defineConfig({
  resolve: { conditions: ["source"] },
  ssr: { resolve: { conditions: ["source"], externalConditions: ["source"] } },
  test: {
    projects: [
      {
        extends: true,
        test: {
          name: "unit",
          include: ["packages/*/test/**/*.test.ts", "deploy/test/**/*.test.ts"],
          testTimeout: 30_000,
          hookTimeout: 60_000
        }
      }
    ]
  }
})
