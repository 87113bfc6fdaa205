//! Owns the guard that keeps paged endpoints (`/connz`, `/jsz` accounts) finite: a node
//! (or a proxy) that ignores `offset`, or answers the same page again, would otherwise be
//! paged forever, buffering page after page within one poll cycle.

use super::PollError;

/// Pages allowed in one cycle when the node does not say how many items it has (`/jsz`
/// before 2.10.28 has no `total`): 100 pages of 1024 accounts.
pub const PAGES_WITHOUT_TOTAL: usize = 100;

/// Checks each page of one paged fetch as it arrives. `K` identifies a page's first item
/// (a connection id, an account name).
#[derive(Debug)]
pub struct PageGuard<K> {
    page_size: usize,
    pages: usize,
    max_pages: usize,
    previous_first: Option<K>,
}

impl<K: PartialEq + std::fmt::Debug> PageGuard<K> {
    pub fn new(page_size: usize) -> PageGuard<K> {
        PageGuard {
            page_size: page_size.max(1),
            pages: 0,
            max_pages: PAGES_WITHOUT_TOTAL,
            previous_first: None,
        }
    }

    /// Checks the page answered for offset `asked`: `answered` is the offset the node
    /// reports (if it reports one), `total` its item count (if it says), and `first` the
    /// page's first item.
    pub fn check(
        &mut self,
        asked: u64,
        answered: Option<u64>,
        total: Option<u64>,
        first: Option<K>,
    ) -> Result<(), PollError> {
        self.pages += 1;
        if self.pages == 1
            && let Some(total) = total
        {
            // Room for items that arrive while paging; the repeat checks below catch a
            // node that never advances long before this bound.
            let pages =
                usize::try_from(total.div_ceil(self.page_size as u64)).unwrap_or(usize::MAX);
            self.max_pages = pages.saturating_add(pages / 4).saturating_add(2);
        }
        if let Some(answered) = answered
            && answered != asked
        {
            return Err(PollError::Paging(format!(
                "asked for offset {asked}, the node answered offset {answered}"
            )));
        }
        if let Some(f) = &first
            && self.previous_first.as_ref() == Some(f)
        {
            return Err(PollError::Paging(format!(
                "the page at offset {asked} starts with {f:?} again, like the previous page"
            )));
        }
        if self.pages > self.max_pages {
            return Err(PollError::Paging(format!(
                "more than {} pages of {} in one poll",
                self.max_pages, self.page_size
            )));
        }
        self.previous_first = first;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pages_that_advance_pass() {
        let mut g = PageGuard::new(1024);
        g.check(0, Some(0), Some(2500), Some(1u64)).unwrap();
        g.check(1024, Some(1024), Some(2500), Some(1025)).unwrap();
        g.check(2048, Some(2048), Some(2500), Some(2049)).unwrap();
    }

    #[test]
    fn an_ignored_offset_fails() {
        let mut g = PageGuard::new(4);
        g.check(0, Some(0), Some(100), Some(1u64)).unwrap();
        let e = g.check(4, Some(0), Some(100), Some(1)).unwrap_err();
        assert_eq!(e.reason(), "paging");
        assert!(e.to_string().contains("offset 4"), "{e}");
    }

    #[test]
    fn a_repeated_page_fails() {
        let mut g = PageGuard::new(1024);
        g.check(0, None, None, Some("ACC0".to_string())).unwrap();
        let e = g
            .check(1024, None, None, Some("ACC0".to_string()))
            .unwrap_err();
        assert_eq!(e.reason(), "paging");
        assert!(e.to_string().contains(r#"starts with "ACC0" again"#), "{e}");
    }

    #[test]
    fn pages_are_bounded_by_the_first_total() {
        // 10 items in pages of 4: 3 pages, plus room for 2 more.
        let mut g = PageGuard::new(4);
        for i in 0..5u64 {
            g.check(i * 4, Some(i * 4), Some(10 + i * 100), Some(i * 4))
                .unwrap();
        }
        assert_eq!(
            g.check(20, Some(20), Some(1000), Some(20))
                .unwrap_err()
                .reason(),
            "paging"
        );
    }

    #[test]
    fn pages_are_bounded_without_a_total() {
        let mut g = PageGuard::new(1);
        for i in 0..PAGES_WITHOUT_TOTAL as u64 {
            g.check(i, None, None, Some(i)).unwrap();
        }
        assert!(g.check(1000, None, None, Some(1000)).is_err());
    }
}
