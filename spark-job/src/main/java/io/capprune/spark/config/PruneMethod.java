package io.capprune.spark.config;

import java.util.Arrays;
import java.util.Locale;
import java.util.Set;
import java.util.stream.Collectors;

/**
 * The pruning methods of {@code cap.prune.method}: CAP variants and the baselines without
 * contrastive terms.
 */
public enum PruneMethod {
  CAP_MOVEMENT("cap-movement", Criterion.MOVEMENT, true),
  CAP_SOFT("cap-soft", Criterion.SOFT_MOVEMENT, true),
  MOVEMENT("movement", Criterion.MOVEMENT, false),
  SOFT_MOVEMENT("soft-movement", Criterion.SOFT_MOVEMENT, false),
  MAGNITUDE("magnitude", Criterion.MAGNITUDE, false),
  /** CAP-f: heads and FFN neurons by first-order importance, retraining with the CAP losses. */
  CAP_STRUCTURED("cap-structured", Criterion.STRUCTURED, true),
  /** The same without the contrastive terms (distillation only). */
  STRUCTURED("structured", Criterion.STRUCTURED, false);

  /**
   * How masks are chosen: unstructured per weight, or structured (heads and neurons,
   * cap.structured).
   */
  public enum Criterion {
    MAGNITUDE,
    MOVEMENT,
    SOFT_MOVEMENT,
    STRUCTURED
  }

  /**
   * Whether whole heads and neurons are pruned (the cap.structured sequence) instead of weights.
   */
  public boolean structured() {
    return criterion == Criterion.STRUCTURED;
  }

  private final String configName;
  private final Criterion criterion;
  private final boolean contrastive;

  PruneMethod(String configName, Criterion criterion, boolean contrastive) {
    this.configName = configName;
    this.criterion = criterion;
    this.contrastive = contrastive;
  }

  public String configName() {
    return configName;
  }

  public Criterion criterion() {
    return criterion;
  }

  /** Whether the PrC, SnC and FiC terms are on; every method distils from the teacher. */
  public boolean contrastive() {
    return contrastive;
  }

  public static Set<String> names() {
    return Arrays.stream(values())
        .map(PruneMethod::configName)
        .collect(Collectors.toCollection(java.util.TreeSet::new));
  }

  public static PruneMethod fromConfigName(String name) {
    String n = name.trim().toLowerCase(Locale.ROOT);
    for (PruneMethod m : values()) {
      if (m.configName.equals(n)) {
        return m;
      }
    }
    throw new IllegalArgumentException(
        "unknown pruning method '" + name + "' (one of " + names() + ")");
  }
}
