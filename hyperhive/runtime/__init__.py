"""Where agents run: one small async interface (`base.Runtime`) and one module per backend
(`bwrap`, `process`, `external`, `fake`). The core only ever talks to `Runtime`."""
