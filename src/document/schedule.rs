//! How long a backup schedule may leave between two backups: the longest gap between consecutive
//! runs of the cron schedules together, found by laying their runs over four calendar years (every
//! weekday of every date, a leap year included). The BackupTooOld alert's threshold comes from it.

/// One parsed five-field cron expression (numbers, ranges, lists, steps and `*`): what
/// validation accepts and what the backup alert's threshold is computed from.
#[derive(Debug, Clone)]
pub struct Cron {
    minutes: Vec<bool>,
    hours: Vec<bool>,
    days: Vec<bool>,
    months: Vec<bool>,
    weekdays: Vec<bool>,
    /// cron's rule: when both day fields are restricted, a day matches either.
    days_or_weekdays: bool,
}

/// Why a cron expression is refused, as `terroir validate` says it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CronError {
    #[error("it has {0} fields")]
    FieldCount(usize),
    #[error("the {name} step `{step}` is not a positive number")]
    Step { name: &'static str, step: String },
    #[error("the {name} field `{field}` is malformed")]
    Malformed { name: &'static str, field: String },
    #[error("the {name} {value} is outside {lo}-{hi}")]
    OutOfRange {
        name: &'static str,
        value: u32,
        lo: u32,
        hi: u32,
    },
    #[error("the {name} field `{field}` is not a number, range, list or `*`")]
    NotANumber { name: &'static str, field: String },
    #[error("the {name} range {from}-{to} runs backwards")]
    Backwards {
        name: &'static str,
        from: u32,
        to: u32,
    },
}

/// The five fields: their names and ranges (day of week 7 is Sunday too).
const FIELDS: [(&str, u32, u32); 5] = [
    ("minute", 0, 59),
    ("hour", 0, 23),
    ("day of month", 1, 31),
    ("month", 1, 12),
    ("day of week", 0, 7),
];

/// One field's values: numbers, `*`, ranges, lists and steps (`5/15` is from 5 to the end).
fn field(text: &str, (name, lo, hi): (&'static str, u32, u32)) -> Result<Vec<bool>, CronError> {
    let mut set = vec![false; hi as usize + 1];
    for part in text.split(',') {
        let (range, step) = match part.split_once('/') {
            Some((r, s)) => (
                r,
                s.parse::<u32>()
                    .ok()
                    .filter(|n| *n > 0)
                    .ok_or_else(|| CronError::Step {
                        name,
                        step: s.to_owned(),
                    })?,
            ),
            None => (part, 1),
        };
        let (from, to) = if range == "*" {
            (lo, hi)
        } else {
            let bounds: Vec<&str> = range.split('-').collect();
            if bounds.len() > 2 {
                return Err(CronError::Malformed {
                    name,
                    field: text.to_owned(),
                });
            }
            let mut values = Vec::new();
            for b in bounds {
                match b.parse::<u32>() {
                    Ok(n) if (lo..=hi).contains(&n) => values.push(n),
                    Ok(n) => {
                        return Err(CronError::OutOfRange {
                            name,
                            value: n,
                            lo,
                            hi,
                        });
                    }
                    Err(_) => {
                        return Err(CronError::NotANumber {
                            name,
                            field: text.to_owned(),
                        });
                    }
                }
            }
            match values[..] {
                [from, to] if from > to => return Err(CronError::Backwards { name, from, to }),
                [from, to] => (from, to),
                [n] if part.contains('/') => (n, hi),
                [n] => (n, n),
                _ => {
                    return Err(CronError::Malformed {
                        name,
                        field: text.to_owned(),
                    });
                }
            }
        };
        let mut v = from;
        while v <= to {
            set[v as usize] = true;
            v += step;
        }
    }
    Ok(set)
}

impl Cron {
    pub fn parse(expr: &str) -> Result<Cron, CronError> {
        let f: Vec<&str> = expr.split_whitespace().collect();
        if f.len() != 5 {
            return Err(CronError::FieldCount(f.len()));
        }
        let mut weekdays = field(f[4], FIELDS[4])?;
        if weekdays[7] {
            weekdays[0] = true; // 7 is Sunday too
        }
        weekdays.truncate(7);
        Ok(Cron {
            minutes: field(f[0], FIELDS[0])?,
            hours: field(f[1], FIELDS[1])?,
            days: field(f[2], FIELDS[2])?,
            months: field(f[3], FIELDS[3])?,
            weekdays,
            days_or_weekdays: !f[2].starts_with('*') && !f[4].starts_with('*'),
        })
    }

    fn runs_on(&self, month: u32, day: u32, weekday: u32) -> bool {
        if !self.months[month as usize] {
            return false;
        }
        let (d, w) = (self.days[day as usize], self.weekdays[weekday as usize]);
        if self.days_or_weekdays {
            d || w
        } else {
            d && w
        }
    }

    /// Minutes of the day it runs at, in order.
    fn minutes_of_day(&self) -> Vec<u64> {
        let mut out = Vec::new();
        for h in 0..24u64 {
            for m in 0..60u64 {
                if self.hours[h as usize] && self.minutes[m as usize] {
                    out.push(h * 60 + m);
                }
            }
        }
        out
    }
}

/// The first minute (over the same four calendar years) at which both schedules run, as
/// `(weekday name, HH:MM)`: `None` when they never coincide.
pub fn first_shared_run(a: &Cron, b: &Cron) -> Option<(&'static str, String)> {
    const DAYS_IN_MONTH: [u32; 12] = [31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31];
    const WEEKDAYS: [&str; 7] = [
        "Sunday",
        "Monday",
        "Tuesday",
        "Wednesday",
        "Thursday",
        "Friday",
        "Saturday",
    ];
    let minutes = b.minutes_of_day();
    let shared: Vec<u64> = a
        .minutes_of_day()
        .into_iter()
        .filter(|m| minutes.contains(m))
        .collect();
    let first = *shared.first()?;
    let mut weekday = 1u32; // 2024-01-01 was a Monday
    for year in 2024..2028u32 {
        for month in 1..=12u32 {
            let len = if month == 2 && year % 4 == 0 {
                29
            } else {
                DAYS_IN_MONTH[month as usize - 1]
            };
            for day in 1..=len {
                if a.runs_on(month, day, weekday) && b.runs_on(month, day, weekday) {
                    return Some((
                        WEEKDAYS[weekday as usize],
                        format!("{:02}:{:02}", first / 60, first % 60),
                    ));
                }
                weekday = (weekday + 1) % 7;
            }
        }
    }
    None
}

/// The longest time, in seconds, between two consecutive runs of any of `schedules`; `None` when
/// they never run.
pub fn longest_gap(schedules: &[&Cron]) -> Option<u64> {
    const DAYS_IN_MONTH: [u32; 12] = [31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31];
    let mut runs: Vec<u64> = Vec::new();
    // 2024-01-01 was a Monday; 2024 to 2027 hold a leap year and every weekday of every date
    let mut day_index = 0u64;
    let mut weekday = 1u32;
    for year in 2024..2028u32 {
        for month in 1..=12u32 {
            let mut len = DAYS_IN_MONTH[month as usize - 1];
            if month == 2 && year % 4 == 0 {
                len = 29;
            }
            for day in 1..=len {
                for cron in schedules {
                    if cron.runs_on(month, day, weekday) {
                        runs.extend(
                            cron.minutes_of_day()
                                .into_iter()
                                .map(|m| day_index * 1440 + m),
                        );
                    }
                }
                day_index += 1;
                weekday = (weekday + 1) % 7;
            }
        }
    }
    runs.sort_unstable();
    runs.dedup();
    runs.first()?;
    // four years hold every gap a schedule makes; one run in them (29 February) means years
    let gap = runs
        .windows(2)
        .map(|p| p[1] - p[0])
        .max()
        .unwrap_or(day_index * 1440);
    Some(gap * 60)
}

#[cfg(test)]
mod shared_tests {
    use super::*;

    #[test]
    fn schedules_that_fire_in_the_same_minute_are_found() {
        let c = |e: &str| Cron::parse(e).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            first_shared_run(&c("30 1 * * 0"), &c("30 1 * * *")),
            Some(("Sunday", "01:30".to_owned()))
        );
        assert_eq!(first_shared_run(&c("30 1 * * 0"), &c("15 2 * * *")), None);
        assert_eq!(
            first_shared_run(&c("0 3 1 * *"), &c("0 3 * * 1-5")),
            Some(("Monday", "03:00".to_owned())),
            "the first of a month that is a weekday"
        );
        assert_eq!(
            first_shared_run(&c("0 3 * * 6"), &c("0 3 * * 1-5")),
            None,
            "the same minute on other days"
        );
    }
}

/// A Prometheus duration: `26h`, `90m`, `45s`.
pub fn duration(seconds: u64) -> String {
    if seconds.is_multiple_of(3600) {
        format!("{}h", seconds / 3600)
    } else if seconds.is_multiple_of(60) {
        format!("{}m", seconds / 60)
    } else {
        format!("{seconds}s")
    }
}

/// How old the last backup may be before the alert fires: the longest gap plus a margin of a
/// twelfth of it (at least an hour) for the backup's own run time. A daily schedule gives 26h.
pub fn alert_after(gap_seconds: u64) -> u64 {
    let margin = (gap_seconds / 12).max(3600);
    // whole minutes, for a readable rule
    (gap_seconds + margin).div_ceil(60) * 60
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn gap(exprs: &[&str]) -> u64 {
        let crons: Vec<Cron> = exprs.iter().map(|e| Cron::parse(e).unwrap()).collect();
        let refs: Vec<&Cron> = crons.iter().collect();
        longest_gap(&refs).unwrap()
    }

    #[test]
    fn daily_weekly_and_irregular_schedules() {
        assert_eq!(gap(&["15 2 * * *"]), 24 * 3600);
        assert_eq!(alert_after(24 * 3600), 26 * 3600);
        assert_eq!(duration(alert_after(24 * 3600)), "26h");
        // the default pair: daily incremental and weekly full, the full one half an hour earlier on Sundays
        assert_eq!(gap(&["15 2 * * *", "30 1 * * 0"]), 24 * 3600);
        assert_eq!(gap(&["30 1 * * 0"]), 7 * 24 * 3600);
        // weekdays only: Friday 02:15 to Monday 02:15
        assert_eq!(gap(&["15 2 * * 1-5"]), 3 * 24 * 3600);
        // every 6 hours from 3:00
        assert_eq!(gap(&["0 3/6 * * *"]), 6 * 3600);
        assert_eq!(gap(&["0,30 * * * *"]), 1800);
        // day of month or day of week, when both are restricted: the 1st and every Sunday
        assert!(gap(&["0 0 1 * 0"]) <= 7 * 24 * 3600);
        // monthly on the 31st: months without one stretch the gap to about two months
        assert_eq!(gap(&["0 0 31 * *"]), 61 * 24 * 3600);
    }

    #[test]
    fn a_schedule_that_never_runs_has_no_gap() {
        let c = Cron::parse("0 0 30 2 *").unwrap();
        assert_eq!(longest_gap(&[&c]), None);
        assert!(Cron::parse("0 0 * *").is_err());
        assert!(Cron::parse("61 0 * * *").is_err());
    }
}
