//! Reading a list the forge hands out in pages, with a bound on how many pages are read:
//! a forge that keeps answering full pages (a bug, a loop in its paging) costs at most
//! [`Paging::max_pages`] calls, not a worker.

use std::future::Future;

use crate::provider::ProviderError;

/// Page size and the cap on pages read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Paging {
    /// Items asked for per page (`per_page`); a shorter page is the last one.
    pub per_page: usize,
    /// Pages read at most; items past them are not read.
    pub max_pages: u32,
}

/// Comments and notes: 100 a page, 50 pages (5,000 comments).
pub(crate) const COMMENT_PAGES: Paging = Paging {
    per_page: 100,
    max_pages: 50,
};

/// One page to ask for, as query text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Page {
    /// 1-based.
    pub number: String,
    pub per_page: String,
}

impl Page {
    /// `per_page` and `page`, the query parameters GitHub and GitLab page with.
    pub(crate) fn query_pairs(&self) -> [(&str, &str); 2] {
        [("per_page", &self.per_page), ("page", &self.number)]
    }
}

impl Paging {
    /// Reads pages 1, 2, … through `fetch` until one holds fewer than
    /// [`Paging::per_page`] items or [`Paging::max_pages`] were read, and returns their
    /// items in order. The first error ends the read.
    pub(crate) async fn read_all<T, F, Fut>(&self, mut fetch: F) -> Result<Vec<T>, ProviderError>
    where
        F: FnMut(Page) -> Fut,
        Fut: Future<Output = Result<Vec<T>, ProviderError>>,
    {
        let mut items = Vec::new();
        let per_page = self.per_page.to_string();
        for number in 1..=self.max_pages {
            let batch = fetch(Page {
                number: number.to_string(),
                per_page: per_page.clone(),
            })
            .await?;
            let last = batch.len() < self.per_page;
            items.extend(batch);
            if last {
                break;
            }
        }
        Ok(items)
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use super::*;

    fn run<T>(future: impl Future<Output = T>) -> T {
        tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap()
            .block_on(future)
    }

    #[test]
    fn stops_at_the_first_short_page() {
        let asked = Mutex::new(Vec::new());
        let paging = Paging {
            per_page: 3,
            max_pages: 10,
        };
        let items = run(paging.read_all(|page| {
            asked
                .lock()
                .unwrap()
                .push(page.query_pairs().map(|(k, v)| format!("{k}={v}")));
            let n: usize = page.number.parse().unwrap();
            async move { Ok((0..if n < 3 { 3 } else { 1 }).map(|i| n * 10 + i).collect()) }
        }))
        .unwrap();
        assert_eq!(items, [10, 11, 12, 20, 21, 22, 30]);
        let asked = asked.into_inner().unwrap();
        assert_eq!(asked.len(), 3);
        assert_eq!(asked[1], ["per_page=3", "page=2"]);
    }

    #[test]
    fn reads_no_more_than_the_cap_of_full_pages() {
        let calls = Mutex::new(0u32);
        let items = run(COMMENT_PAGES.read_all(|_| {
            *calls.lock().unwrap() += 1;
            async { Ok(vec![(); 100]) }
        }))
        .unwrap();
        assert_eq!(*calls.lock().unwrap(), 50);
        assert_eq!(items.len(), 5_000);
    }

    #[test]
    fn an_empty_first_page_is_one_call_and_an_error_ends_the_read() {
        let calls = Mutex::new(0u32);
        let items: Vec<u8> = run(COMMENT_PAGES.read_all(|_| {
            *calls.lock().unwrap() += 1;
            async { Ok(Vec::new()) }
        }))
        .unwrap();
        assert!(items.is_empty());
        assert_eq!(*calls.lock().unwrap(), 1);

        let failed: Result<Vec<u8>, _> = run(COMMENT_PAGES.read_all(|page| async move {
            if page.number == "2" {
                Err(ProviderError::Transient {
                    provider: "gitlab",
                    message: "timed out".into(),
                })
            } else {
                Ok(vec![0; 100])
            }
        }));
        assert!(failed.unwrap_err().is_transient());
    }
}
