#!/usr/bin/env bash
# GPU round 8 (one H200): cddpm-gaussian continued with more gray crops (gray_prob 0.35; BSD68/Set12 are gray) and
# the gray real-noise model retrained for microscopy (dim crops via "exposure", exact Poisson-Gaussian up to
# a = 0.1, 8-bit quantized inputs). PART a: first chunk from .carry/init8 (the shipped weights); PART b: continues
# from the chunk-a weights (INIT=init8b) and evaluates on Set12 and 8 FMDD pairs (.carry/d8).
exec bash benchmarks/gpu_round.sh 8 d8 init8 8.0 12
