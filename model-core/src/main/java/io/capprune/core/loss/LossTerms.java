package io.capprune.core.loss;

/**
 * Plain values of one step's loss, for logging and metrics. ce and kd are unweighted; prc, snc and
 * fic are the contrastive terms (unsup + sup) with wU and wS already applied, 0 when the bank is
 * absent; total = wCe·ce + wKd·kd + prc + snc + fic.
 */
public record LossTerms(float ce, float kd, float prc, float snc, float fic, float total) {}
