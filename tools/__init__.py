"""Developer tools beside the app, never packaged with it: the README's
generated sections and the GUI stall meter used by the benchmarks."""
