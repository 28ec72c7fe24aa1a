package io.capprune.spark.config;

import com.typesafe.config.Config;
import com.typesafe.config.ConfigFactory;
import com.typesafe.config.ConfigRenderOptions;
import com.typesafe.config.ConfigValue;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;

/**
 * The configuration reference page ({@code docs/configuration.md}), generated from the comments in
 * {@code conf/reference.conf} so the two cannot drift: a test compares the page with this output.
 */
public final class ConfigReference {
  private ConfigReference() {}

  public static String markdown() {
    Config ref =
        ConfigFactory.parseResources(
            ConfigReference.class.getClassLoader(), "capprune/reference.conf");
    StringBuilder sb = new StringBuilder();
    sb.append("# Configuration reference\n\n");
    sb.append(
        "Generated from `conf/reference.conf` by `bin/cap-prune config-reference`; do not edit by hand\n");
    sb.append(
        "(a test fails when this page and reference.conf differ). Keys are set in a HOCON file given\n");
    sb.append(
        "with `--config`, or one at a time with `--conf key=value` (the `cap.` prefix may be omitted).\n");
    sb.append(
        "Task presets in `conf/tasks/<task>.conf` override some defaults; see the task's file.\n\n");
    Map<String, List<String[]>> sections = new TreeMap<>();
    List<String[]> structured = new ArrayList<>();
    String structuredPrefix = JobConfig.STRUCTURED_DEFAULTS + ".";
    for (Map.Entry<String, ConfigValue> e : ref.entrySet()) {
      String key = e.getKey();
      if (key.startsWith(structuredPrefix)) {
        structured.add(
            new String[] {
              key.substring(structuredPrefix.length()),
              e.getValue().render(ConfigRenderOptions.concise()),
              String.join(" ", e.getValue().origin().comments()).trim()
            });
        continue;
      }
      String[] parts = key.split("\\.");
      String section = parts.length > 2 ? parts[0] + "." + parts[1] : parts[0];
      String doc = String.join(" ", e.getValue().origin().comments()).trim();
      String value = e.getValue().render(ConfigRenderOptions.concise());
      sections.computeIfAbsent(section, s -> new ArrayList<>()).add(new String[] {key, value, doc});
    }
    for (Map.Entry<String, List<String[]>> s : sections.entrySet()) {
      sb.append("## `").append(s.getKey()).append("`\n\n");
      sb.append("| key | default | meaning |\n|---|---|---|\n");
      s.getValue().sort((a, b) -> a[0].compareTo(b[0]));
      for (String[] row : s.getValue()) {
        sb.append("| `")
            .append(row[0])
            .append("` | `")
            .append(row[1].replace("|", "\\|"))
            .append("` | ")
            .append(row[2].replace("|", "\\|"))
            .append(" |\n");
      }
      sb.append('\n');
    }
    if (!structured.isEmpty()) {
      sb.append("## Defaults of the structured methods\n\n");
      sb.append(
          "With `cap.prune.method = cap-structured` or `structured` these values replace the defaults\n");
      sb.append(
          "above (the reference's structured GLUE values, docs/cap-math.md §5.3); a key you set, or the task\n");
      sb.append("preset sets, still wins.\n\n");
      sb.append("| key | structured default | source |\n|---|---|---|\n");
      structured.sort((a, b) -> a[0].compareTo(b[0]));
      for (String[] row : structured) {
        sb.append("| `")
            .append(row[0])
            .append("` | `")
            .append(row[1].replace("|", "\\|"))
            .append("` | ")
            .append(row[2].replace("|", "\\|"))
            .append(" |\n");
      }
      sb.append('\n');
    }
    return sb.toString();
  }
}
