package io.capprune.core.loss;

import io.capprune.core.bank.RepresentationBank.Kind;
import java.io.Serializable;
import java.util.EnumSet;
import java.util.Set;

/**
 * Weights of the CAP objective (docs/cap-math.md §1.6, 2, 5). {@link #defaults()} are the
 * unstructured GLUE script values; structured GLUE uses wU 0.3, wS 3, kdTemperature 1. Other values
 * are the defaults with named changes ({@code
 * defaults().withExtraExamples(16).withContrastive(false)}).
 *
 * @param wCe weight of the task loss (CE or MSE)
 * @param wKd weight of distillation; 0 turns it off
 * @param kdTemperature distillation temperature T
 * @param tau contrastive temperature τ
 * @param wU unsupervised contrastive weight (same for every bank)
 * @param wS supervised contrastive weight (same for every bank; unused without labels)
 * @param extraExamples EXTRA_EXAMPLES: extra negatives per call, divided by R for SNAP
 * @param representation which vector the contrastive terms compare
 * @param banks which of PRE (PrC), FINE (FiC), SNAP (SnC) take part when present
 * @param contrastive false for the movement-pruning + KD baseline without CAP terms
 * @param regressionMse with one output (regression), distil by the mean squared error between
 *     student and teacher outputs; false keeps the reference's formula, which is 0 for one output
 */
public record CapLossConfig(
    float wCe,
    float wKd,
    float kdTemperature,
    float tau,
    float wU,
    float wS,
    int extraExamples,
    Representation.Mode representation,
    Set<Kind> banks,
    boolean contrastive,
    boolean regressionMse)
    implements Serializable {

  /** The reference's objective: no distillation term for regression (one output). */
  public CapLossConfig(
      float wCe,
      float wKd,
      float kdTemperature,
      float tau,
      float wU,
      float wS,
      int extraExamples,
      Representation.Mode representation,
      Set<Kind> banks,
      boolean contrastive) {
    this(
        wCe,
        wKd,
        kdTemperature,
        tau,
        wU,
        wS,
        extraExamples,
        representation,
        banks,
        contrastive,
        false);
  }

  public CapLossConfig {
    requireNonNegative(wCe, "wCe");
    requireNonNegative(wKd, "wKd");
    requireNonNegative(wU, "wU");
    requireNonNegative(wS, "wS");
    if (!(kdTemperature > 0)) {
      throw new IllegalArgumentException("kdTemperature must be > 0, got " + kdTemperature);
    }
    if (!(tau > 0)) {
      throw new IllegalArgumentException("tau must be > 0, got " + tau);
    }
    if (extraExamples < 0) {
      throw new IllegalArgumentException("extraExamples must be >= 0, got " + extraExamples);
    }
    if (representation == null) {
      throw new IllegalArgumentException("representation must be one of POOLER, CLS, MEAN");
    }
    banks = banks == null || banks.isEmpty() ? Set.of() : Set.copyOf(EnumSet.copyOf(banks));
  }

  public static CapLossConfig defaults() {
    return new CapLossConfig(
        0.1f,
        0.9f,
        2.0f,
        0.1f,
        0.1f,
        10f,
        4096,
        Representation.Mode.POOLER,
        EnumSet.allOf(Kind.class),
        true);
  }

  public CapLossConfig withTau(float t) {
    return new CapLossConfig(
        wCe, wKd, kdTemperature, t, wU, wS, extraExamples, representation, banks, contrastive);
  }

  public CapLossConfig withSupervisedWeight(float w) {
    return new CapLossConfig(
        wCe, wKd, kdTemperature, tau, wU, w, extraExamples, representation, banks, contrastive);
  }

  public CapLossConfig withBanks(Set<Kind> enabled) {
    return new CapLossConfig(
        wCe,
        wKd,
        kdTemperature,
        tau,
        wU,
        wS,
        extraExamples,
        representation,
        enabled,
        contrastive,
        regressionMse);
  }

  public CapLossConfig withContrastive(boolean on) {
    return new CapLossConfig(
        wCe,
        wKd,
        kdTemperature,
        tau,
        wU,
        wS,
        extraExamples,
        representation,
        banks,
        on,
        regressionMse);
  }

  public CapLossConfig withExtraExamples(int extra) {
    return new CapLossConfig(
        wCe,
        wKd,
        kdTemperature,
        tau,
        wU,
        wS,
        extra,
        representation,
        banks,
        contrastive,
        regressionMse);
  }

  /** Distillation on regression tasks by MSE (on) or by the reference's formula, 0 there (off). */
  public CapLossConfig withRegressionMse(boolean on) {
    return new CapLossConfig(
        wCe,
        wKd,
        kdTemperature,
        tau,
        wU,
        wS,
        extraExamples,
        representation,
        banks,
        contrastive,
        on);
  }

  public boolean uses(Kind kind) {
    return contrastive && banks.contains(kind);
  }

  private static void requireNonNegative(float value, String name) {
    if (!(value >= 0) || Float.isInfinite(value)) {
      throw new IllegalArgumentException(name + " must be a finite value >= 0, got " + value);
    }
  }
}
