package io.capprune.spark.config;

import com.typesafe.config.Config;
import com.typesafe.config.ConfigException;
import java.util.List;
import java.util.Set;

/** Typed, validated reads from a Typesafe Config; every failure names the full key. */
final class ConfigReader {
  private final Config config;
  private final String prefix;

  ConfigReader(Config config, String prefix) {
    this.config = config;
    this.prefix = prefix;
  }

  ConfigReader child(String path) {
    return new ConfigReader(config, key(path));
  }

  String key(String path) {
    return prefix.isEmpty() ? path : prefix + "." + path;
  }

  String string(String path) {
    try {
      return config.getString(key(path)).trim();
    } catch (ConfigException e) {
      throw wrap(path, e);
    }
  }

  String oneOf(String path, Set<String> allowed) {
    String v = string(path).toLowerCase(java.util.Locale.ROOT);
    if (!allowed.contains(v)) {
      throw new ConfigValidationException(
          key(path), "'" + v + "' is not one of " + new java.util.TreeSet<>(allowed));
    }
    return v;
  }

  boolean bool(String path) {
    try {
      return config.getBoolean(key(path));
    } catch (ConfigException e) {
      throw wrap(path, e);
    }
  }

  int intAtLeast(String path, int min) {
    int v;
    try {
      v = config.getInt(key(path));
    } catch (ConfigException e) {
      throw wrap(path, e);
    }
    if (v < min) {
      throw new ConfigValidationException(key(path), "must be >= " + min + ", got " + v);
    }
    return v;
  }

  long longValue(String path) {
    try {
      return config.getLong(key(path));
    } catch (ConfigException e) {
      throw wrap(path, e);
    }
  }

  double number(String path) {
    try {
      double v = config.getDouble(key(path));
      if (!Double.isFinite(v)) {
        throw new ConfigValidationException(key(path), "must be a finite number, got " + v);
      }
      return v;
    } catch (ConfigException e) {
      throw wrap(path, e);
    }
  }

  double atLeast(String path, double min) {
    double v = number(path);
    if (v < min) {
      throw new ConfigValidationException(key(path), "must be >= " + min + ", got " + v);
    }
    return v;
  }

  double positive(String path) {
    double v = number(path);
    if (v <= 0) {
      throw new ConfigValidationException(key(path), "must be > 0, got " + v);
    }
    return v;
  }

  /** A value strictly inside (0, 1), e.g. a fraction of weights kept. */
  double openUnit(String path) {
    double v = number(path);
    if (!(v > 0 && v < 1)) {
      throw new ConfigValidationException(key(path), "must be in (0, 1), got " + v);
    }
    return v;
  }

  double closedUnit(String path) {
    double v = number(path);
    if (v < 0 || v > 1) {
      throw new ConfigValidationException(key(path), "must be in [0, 1], got " + v);
    }
    return v;
  }

  List<String> strings(String path) {
    try {
      return List.copyOf(config.getStringList(key(path)));
    } catch (ConfigException e) {
      throw wrap(path, e);
    }
  }

  private ConfigValidationException wrap(String path, ConfigException e) {
    String msg = e.getMessage();
    if (e instanceof ConfigException.Missing) {
      msg = "missing";
    } else if (e instanceof ConfigException.WrongType) {
      // "<origin>: <key> has type X rather than Y" -> keep the type part only
      int i = msg.indexOf(" has type ");
      msg = i >= 0 ? "has" + msg.substring(i + 4) : msg;
    }
    return new ConfigValidationException(key(path), msg);
  }
}
