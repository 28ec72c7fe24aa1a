package io.capprune.core.loss;

/**
 * Plain values of one step's loss, for logging and metrics. ce and kd are unweighted; prc, snc and
 * fic are the contrastive terms (unsup + sup) with wU and wS already applied, 0 when the bank is
 * absent; total = wCe·ce + wKd·kd + prc + snc + fic.
 *
 * <p>Doubles, read at the precision the loss was computed in: a float64 step (gradient checks by
 * central differences) needs its loss to more than float32's 7 digits.
 */
public record LossTerms(double ce, double kd, double prc, double snc, double fic, double total) {}
