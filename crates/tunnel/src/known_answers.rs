//! Known-answer tests of the primitives and of the Noise pattern.
