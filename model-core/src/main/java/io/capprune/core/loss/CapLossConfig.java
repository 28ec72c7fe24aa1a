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
    return new Builder().build();
  }

  /** A builder that starts from this configuration. */
  public Builder toBuilder() {
    return new Builder(this);
  }

  public CapLossConfig withTau(float t) {
    return toBuilder().tau(t).build();
  }

  public CapLossConfig withSupervisedWeight(float w) {
    return toBuilder().wS(w).build();
  }

  public CapLossConfig withBanks(Set<Kind> enabled) {
    return toBuilder().banks(enabled).build();
  }

  public CapLossConfig withContrastive(boolean on) {
    return toBuilder().contrastive(on).build();
  }

  public CapLossConfig withExtraExamples(int extra) {
    return toBuilder().extraExamples(extra).build();
  }

  /** Distillation on regression tasks by MSE (on) or by the reference's formula, 0 there (off). */
  public CapLossConfig withRegressionMse(boolean on) {
    return toBuilder().regressionMse(on).build();
  }

  /**
   * Named settings over {@link #defaults()} (the unstructured GLUE script values); {@link #build()}
   * validates them.
   */
  public static final class Builder {
    private float wCe = 0.1f;
    private float wKd = 0.9f;
    private float kdTemperature = 2.0f;
    private float tau = 0.1f;
    private float wU = 0.1f;
    private float wS = 10f;
    private int extraExamples = 4096;
    private Representation.Mode representation = Representation.Mode.POOLER;
    private Set<Kind> banks = EnumSet.allOf(Kind.class);
    private boolean contrastive = true;
    private boolean regressionMse = false;

    public Builder() {}

    private Builder(CapLossConfig c) {
      wCe = c.wCe;
      wKd = c.wKd;
      kdTemperature = c.kdTemperature;
      tau = c.tau;
      wU = c.wU;
      wS = c.wS;
      extraExamples = c.extraExamples;
      representation = c.representation;
      banks = c.banks;
      contrastive = c.contrastive;
      regressionMse = c.regressionMse;
    }

    public Builder wCe(float v) {
      wCe = v;
      return this;
    }

    public Builder wKd(float v) {
      wKd = v;
      return this;
    }

    public Builder kdTemperature(float v) {
      kdTemperature = v;
      return this;
    }

    public Builder tau(float v) {
      tau = v;
      return this;
    }

    public Builder wU(float v) {
      wU = v;
      return this;
    }

    public Builder wS(float v) {
      wS = v;
      return this;
    }

    public Builder extraExamples(int v) {
      extraExamples = v;
      return this;
    }

    public Builder representation(Representation.Mode v) {
      representation = v;
      return this;
    }

    public Builder banks(Set<Kind> v) {
      banks = v;
      return this;
    }

    public Builder contrastive(boolean v) {
      contrastive = v;
      return this;
    }

    public Builder regressionMse(boolean v) {
      regressionMse = v;
      return this;
    }

    public CapLossConfig build() {
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
          regressionMse);
    }
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
