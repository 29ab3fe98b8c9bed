//! A progress bar handle for long steps. With the `progress` feature it draws an
//! indicatif bar on standard error; without it (a plain `cargo add` of the library
//! crates) it does nothing, so library users do not pull indicatif.

/// A progress bar of a known length, hidden unless asked for.
pub struct Progress {
    #[cfg(feature = "progress")]
    bar: indicatif::ProgressBar,
}

impl Progress {
    /// A bar of `len` steps named `msg`, drawn when `show` is true (and the `progress`
    /// feature is on).
    pub fn new(len: u64, msg: &'static str, show: bool) -> Self {
        #[cfg(feature = "progress")]
        {
            let bar = if show {
                let b = indicatif::ProgressBar::new(len);
                b.set_style(
                    indicatif::ProgressStyle::with_template(
                        "{msg:32} [{bar:30}] {pos}/{len} {elapsed}",
                    )
                    .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
                );
                b.set_message(msg);
                b
            } else {
                indicatif::ProgressBar::hidden()
            };
            Progress { bar }
        }
        #[cfg(not(feature = "progress"))]
        {
            let _ = (len, msg, show);
            Progress {}
        }
    }

    /// A bar that draws nothing.
    pub fn hidden() -> Self {
        Self::new(0, "", false)
    }

    /// One more step done.
    pub fn inc(&self, n: u64) {
        #[cfg(feature = "progress")]
        self.bar.inc(n);
        #[cfg(not(feature = "progress"))]
        let _ = n;
    }

    /// Remove the bar.
    pub fn finish_and_clear(&self) {
        #[cfg(feature = "progress")]
        self.bar.finish_and_clear();
    }
}
