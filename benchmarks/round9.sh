#!/usr/bin/env bash
# GPU round 9 (one H200): realdiff per T. PART a fine-tunes the shipped colour model (T = 20) with T in
# {1, 5, 10, 20} for the same minutes (the data, noise and learning rate of its last chunk, 50 warm-up steps) and
# evaluates each on the 22 PolyU test pairs with both samplers at steps = T; it also continues the gray microscopy
# model (8 FMDD pairs). PART b repeats the per-T fine-tunes from the shipped weights with lr 5e-5 and 500 warm-up
# steps (chunk a's T = 5 and T = 20 had lost the PolyU noise) and logs the PolyU training-pair loss every 250 steps.
# PART c (INIT=init9b: chunk b's realdiff-T1 weights) continues T = 1, also with PolyU at half the batch.
# Data: .carry/d9 (BSDS500 train+test, PolyU, 8 FMDD pairs under e7/fmdd); weights to start from: .carry/$INIT.
# Built with: bash benchmarks/pack_carry.sh data d9 bsds500 polyu fmdd8; bash benchmarks/pack_carry.sh init init9
# realdiff-color realdiff-gray; after part b: bash benchmarks/pack_carry.sh unpack <returned files> r9b, then copy
# r9b/realdiff-T1.* into .carry/init9b. Carry: [".carry/d9", ".carry/$INIT"].
exec bash benchmarks/gpu_round.sh 9 d9 init9 7.6 22
