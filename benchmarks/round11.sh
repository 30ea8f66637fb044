#!/usr/bin/env bash
# GPU round 11 (prepared in session 7, not run yet): a larger real-photo model for PolyU. Round 10 showed that the
# seed decides much (the gray real-noise model gained 0.6 dB on FMDD from a DDPM seed over a real-photo seed), and the
# shipped realdiff-color (small UNet, 3.6M, seeded from ddpm-natural) stalls near 38.15 dB on PolyU test. This trains
# the "base" UNet (~9.6M) seeded from cddpm-gaussian, the project's longest-trained network (21.5k steps, every
# Gaussian level, colour and gray), on the recipe of the shipped model (BSDS500 with Poisson-Gaussian and Gaussian
# noise, 70 %; the PolyU training pairs, 30 %): with the noisy image as a condition (condition_on_y; cddpm's condition
# [y, sigma, flag] narrowed to [y], nets.unet.narrow_condition) and without it (y's input weights added to x_t's).
# Long warm-up (round 9). PolyU test on the H200 after each chunk; SIDD and the CPU rows after shipping candidates.
#   PART=a INIT=init11 MIN=8    bash benchmarks/pack_carry.sh init init11 cddpm-gaussian
#   later chunks: PART=b INIT=r11a (plans/round11b.json: each run continues from its own stem), then INIT=r11b ...
# Data: bash benchmarks/pack_carry.sh data d11 bsds500 polyu (34 MB; with the 19 MB seed and the ~9 MB tree the call
# carries ~60 MiB of its 64). Carry: [".carry/d11", ".carry/$INIT"] (park weights/ outside the repo during the call).
exec bash benchmarks/gpu_round.sh 11 d11 init11 8.0 22
