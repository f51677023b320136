//! The video catalogue and the watch events the recommender learns from: MovieLens
//! 100k as fetched by `scripts/fetch-data.sh`, or a synthetic dataset generated in code
//! for tests (so they need no download).
//!
//! The files are RecBole's atomic format: `ml-100k.inter` (user, item, rating,
//! timestamp; tab-separated, one header line) and `ml-100k.item` (item, title, year,
//! genres; Latin-1). Every line is checked; a malformed one is an error naming it.

use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use serde::Serialize;
use std::collections::BTreeMap;
use std::path::Path;

/// One video.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Video {
    /// Catalogue id.
    pub id: u32,
    /// Title.
    pub title: String,
    /// Release year, when known.
    pub year: Option<u16>,
    /// Genres.
    pub genres: Vec<String>,
}

/// One user's rating (a watch event with a score).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Rating {
    /// User id.
    pub user: u32,
    /// Video id.
    pub item: u32,
    /// 1 to 5.
    pub rating: f32,
    /// Seconds since the epoch.
    pub timestamp: u64,
}

/// Videos and ratings.
#[derive(Clone, Debug, Default)]
pub struct Dataset {
    /// By id.
    pub videos: BTreeMap<u32, Video>,
    /// All ratings.
    pub ratings: Vec<Rating>,
}

/// Why the data could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum DataError {
    /// A file is missing or unreadable.
    #[error("{0}: {1} (run scripts/fetch-data.sh)")]
    Io(String, std::io::Error),
    /// A line does not parse.
    #[error("{file} line {line}: {what}")]
    Malformed {
        /// The file.
        file: String,
        /// 1-based line number.
        line: usize,
        /// What is wrong.
        what: String,
    },
}

fn read_latin1(path: &Path) -> Result<String, DataError> {
    let bytes = std::fs::read(path).map_err(|e| DataError::Io(path.display().to_string(), e))?;
    Ok(bytes.into_iter().map(char::from).collect())
}

/// Where a data line came from, to name it in an error.
struct LineRef {
    file: String,
    line: usize,
}

impl LineRef {
    fn error(&self, what: &str) -> DataError {
        DataError::Malformed {
            file: self.file.clone(),
            line: self.line,
            what: what.into(),
        }
    }
}

/// The non-empty lines of a RecBole atomic file after its header, with their places.
fn data_lines(path: &Path) -> Result<Vec<(String, LineRef)>, DataError> {
    let file = path.display().to_string();
    Ok(read_latin1(path)?
        .lines()
        .enumerate()
        .skip(1)
        .filter(|(_, l)| !l.trim().is_empty())
        .map(|(i, l)| {
            (
                l.to_string(),
                LineRef {
                    file: file.clone(),
                    line: i + 1,
                },
            )
        })
        .collect())
}

impl Dataset {
    /// Loads `ml-100k.inter` and `ml-100k.item` from `dir`.
    pub fn load(dir: &Path) -> Result<Dataset, DataError> {
        let mut dataset = Dataset::default();
        for (line, malformed) in data_lines(&dir.join("ml-100k.item"))? {
            let malformed = |what: &str| malformed.error(what);
            let fields: Vec<&str> = line.split('\t').collect();
            if fields.len() < 4 {
                return Err(malformed("expected 4 tab-separated fields"));
            }
            let id: u32 = fields[0]
                .parse()
                .map_err(|_| malformed("item id is not a number"))?;
            dataset.videos.insert(
                id,
                Video {
                    id,
                    title: fields[1].trim().to_string(),
                    year: fields[2].trim().parse().ok(),
                    genres: fields[3].split_whitespace().map(str::to_string).collect(),
                },
            );
        }
        for (line, malformed) in data_lines(&dir.join("ml-100k.inter"))? {
            let malformed = |what: &str| malformed.error(what);
            let mut fields = line.split('\t');
            let mut next = |what: &str| fields.next().ok_or_else(|| malformed(what));
            let user = next("no user")?
                .parse()
                .map_err(|_| malformed("user is not a number"))?;
            let item = next("no item")?
                .parse()
                .map_err(|_| malformed("item is not a number"))?;
            let rating = next("no rating")?
                .parse()
                .map_err(|_| malformed("rating is not a number"))?;
            let timestamp = next("no timestamp")?
                .parse::<f64>()
                .map_err(|_| malformed("timestamp is not a number"))?
                as u64;
            if !dataset.videos.contains_key(&item) {
                return Err(malformed("rating of an unknown item"));
            }
            dataset.ratings.push(Rating {
                user,
                item,
                rating,
                timestamp,
            });
        }
        Ok(dataset)
    }

    /// A synthetic catalogue: `users` users in `tastes` taste groups, each group
    /// preferring its own block of `items` videos, plus some noise. Deterministic in
    /// `seed`, so tests can assert what a good recommender does with it.
    pub fn synthetic(users: u32, items: u32, tastes: u32, seed: u64) -> Dataset {
        let mut rng = SmallRng::seed_from_u64(seed);
        let genres = ["Action", "Comedy", "Drama", "Sci-Fi", "Romance", "Thriller"];
        let videos = (1..=items)
            .map(|id| {
                let taste = (id - 1) % tastes;
                let video = Video {
                    id,
                    title: format!("Video {id}"),
                    year: Some(1980 + (id % 40) as u16),
                    genres: vec![genres[taste as usize % genres.len()].to_string()],
                };
                (id, video)
            })
            .collect();
        let mut ratings = Vec::new();
        for user in 1..=users {
            let taste = (user - 1) % tastes;
            for item in 1..=items {
                let same = (item - 1) % tastes == taste;
                let p = if same { 0.35 } else { 0.03 };
                if rng.random_bool(p) {
                    let rating = if same {
                        rng.random_range(3..=5)
                    } else {
                        rng.random_range(1..=3)
                    } as f32;
                    ratings.push(Rating {
                        user,
                        item,
                        rating,
                        timestamp: 1_000_000 + rng.random_range(0..1_000_000),
                    });
                }
            }
        }
        Dataset { videos, ratings }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loads_recbole_atomic_files_and_names_a_bad_line() {
        let dir = std::env::temp_dir().join(format!("catalog-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("ml-100k.item"), b"item_id:token\tmovie_title:token_seq\trelease_year:token\tclass:token_seq\n1\tToy Story\t1995\tAnimation Children's Comedy\n2\tCaf\xe9\t\tDrama\n").unwrap();
        std::fs::write(dir.join("ml-100k.inter"), "user_id:token\titem_id:token\trating:float\ttimestamp:float\n196\t1\t3\t881250949\n7\t2\t5\t881250950\n").unwrap();
        let d = Dataset::load(&dir).unwrap();
        assert_eq!(d.videos[&1].genres, ["Animation", "Children's", "Comedy"]);
        assert_eq!(d.videos[&2].title, "Café");
        assert_eq!(d.videos[&2].year, None);
        assert_eq!(d.ratings.len(), 2);
        std::fs::write(dir.join("ml-100k.inter"), "header\n196\t9\t3\t1\n").unwrap();
        let err = Dataset::load(&dir).unwrap_err().to_string();
        assert!(
            err.contains("line 2") && err.contains("unknown item"),
            "{err}"
        );
    }

    #[test]
    fn synthetic_data_is_deterministic() {
        let a = Dataset::synthetic(50, 40, 4, 7);
        let b = Dataset::synthetic(50, 40, 4, 7);
        assert_eq!(a.ratings, b.ratings);
        assert!(a.ratings.len() > 200);
    }
}
