import warnings

import pytest

from moksori.text.english import clean_english, number_to_words, ordinal_words, to_ascii, year_words
from moksori.text.errors import UnreadableTextError, UnreadableTextWarning
from moksori.text.tokens import english_to_tokens



@pytest.mark.parametrize(
    ("number", "words"),
    [
        (0, "zero"),
        (7, "seven"),
        (13, "thirteen"),
        (20, "twenty"),
        (42, "forty-two"),
        (100, "one hundred"),
        (105, "one hundred five"),
        (999, "nine hundred ninety-nine"),
        (1000, "one thousand"),
        (1001, "one thousand one"),
        (21_500, "twenty-one thousand five hundred"),
        (1_000_000, "one million"),
        (3_000_000_007, "three billion seven"),
        (-4, "minus four"),
    ],
)
def test_number_to_words(number: int, words: str) -> None:
    assert number_to_words(number) == words


@pytest.mark.parametrize(
    ("number", "words"),
    [(1, "first"), (2, "second"), (3, "third"), (4, "fourth"), (5, "fifth"), (8, "eighth"),
     (9, "ninth"), (12, "twelfth"), (20, "twentieth"), (21, "twenty-first"),
     (100, "one hundredth"), (1003, "one thousand third")],
)
def test_ordinal_words(number: int, words: str) -> None:
    assert ordinal_words(number) == words


@pytest.mark.parametrize(
    ("year", "words"),
    [(1995, "nineteen ninety-five"), (1905, "nineteen oh five"), (1900, "nineteen hundred"),
     (2000, "two thousand"), (2005, "two thousand five"), (2026, "twenty twenty-six"),
     (1066, "ten sixty-six")],
)
def test_year_words(year: int, words: str) -> None:
    assert year_words(year) == words


@pytest.mark.parametrize(
    ("text", "cleaned"),
    [
        ("Mr. Smith met Dr. Jones.", "mister smith met doctor jones."),
        ("St. Patrick and Mrs. Brown, etc.", "saint patrick and missus brown, et cetera."),
        ("Jazz, e.g. bebop; i.e. fast.", "jazz, for example bebop; that is fast."),
        ("It costs $3.50.", "it costs three dollars, fifty cents."),
        ("$1 and $0.05", "one dollar and five cents"),
        ("£2 or €1.01", "two pounds or one euro, one cent"),
        ("$3 million", "three million dollars"),
        ("The 21st and 2nd, 3rd, 11th", "the twenty-first and second, third, eleventh"),
        ("Pi is 3.14", "pi is three point one four"),
        ("About 80% of 1,000,000", "about eighty percent of one million"),
        ("In 1995 and 2026", "in nineteen ninety-five and twenty twenty-six"),
        ("From 0 to 255", "from zero to two hundred fifty-five"),
        ("At 3:30 or 7:00", "at three thirty or seven o'clock"),
        ("At 3:00 p.m. or 9:00 AM", "at three p m or nine a m"),
        ("It was -5 outside", "it was minus five outside"),
        ("a 91-year-old", "a ninety-one-year-old"),
        ("Rock & Roll", "rock and roll"),
        ("It was -5°C, 1 ℃ or 98.6°F; a 90° angle", "it was minus five degrees celsius, one degree celsius or "
         "ninety-eight point six degrees fahrenheit; a ninety degrees angle"),
        ("Add 1/2 cup, 3/4 cup and 2/3 of it", "add one half cup, three quarters cup and two thirds of it"),
        ("A 10km run, 1 kg and 60 mph", "a ten kilometers run, one kilogram and sixty miles per hour"),
        ("Call 555-1234 or 212-555-1234.", "call five five five, one two three four or two one two, five five five, "
         "one two three four."),
        ("Version 2.0.1", "version two point zero point one"),
        ("In the 1990s and the '60s, 100s of fans", "in the nineteen nineties and the sixties, hundreds of fans"),
        ("On 2024-03-01, No. 5 won 3-2", "on march first, twenty twenty-four, number five won three to two"),
        ("From 1990-1995, Jan. 5 at 5 p.m.", "from nineteen ninety to nineteen ninety-five, january fifth at five p m."),
        ("On September 11, 2001 and 5 May", "on september eleventh, two thousand one and the fifth of may"),
        ("Main St. near St. Mary's, 5th St., St. Louis", "main street near saint mary's, fifth street, saint louis"),
        ("He lives on Baker St.", "he lives on baker street."),
        ("Dr. Lee lives on Sunset Dr. in LA", "doctor lee lives on sunset drive in la"),
        ("World War II, Chapter IV and Type I", "world war two, chapter four and type one"),
        ("Henry VIII, Louis XIV and Elizabeth I", "henry the eighth, louis the fourteenth and elizabeth the first"),
        ("Then I saw Malcolm X", "then i saw malcolm x"),
        ("Vol. III", "volume three"),
        ("Bake 2 1/2 hours, 25 min and 10 sec", "bake two and one half hours, twenty-five minutes and ten seconds"),
        ("6 ft or 1 ft, 2 hrs", "six feet or one foot, two hours"),
        ("Nov 5 2024, Sept 30 and Jan 2026", "november fifth twenty twenty-four, september thirtieth and january "
         "twenty twenty-six"),
        ("Add 1 tbsp oil and 2 tsp salt", "add one tablespoon oil and two teaspoons salt"),
        ("Rates of 5.25%-5.5%", "rates of five point two five percent to five point five percent"),
        ("Open Mon-Fri 10am-6pm, Sat.–Sun. 9am–5pm", "open monday to friday ten a m to six p m, saturday to sunday "
         "nine a m to five p m"),
        ("On 10/15/2025 or 25/12/2025, not 13/13/2025", "on october fifteenth, twenty twenty-five or the "
         "twenty-fifth of december twenty twenty-five, not thirteen thirteen twenty twenty-five"),
        ("Call ext. 23", "call extension twenty-three"),
        ("It costs ₩5,000 or ₩1.2 trillion", "it costs five thousand won or one point two trillion won"),
        ("A .45 caliber, about .5 percent", "a point four five caliber, about point five percent"),
        ("Call 911 or dial 112, not 911 people", "call nine one one or dial one one two, not nine hundred eleven people"),
        ("1,999 people paid £1,250", "one thousand nine hundred ninety-nine people paid one thousand two hundred fifty "
         "pounds"),
        ("The 1,000th visitor, pages 5–10", "the one thousandth visitor, pages five to ten"),
        ("Call 1-800-555-0199 or (555) 123-4567", "call one, eight zero zero, five five five, zero one nine nine or "
         "five five five, one two three, four five six seven"),
        ("$5k, €50m and £3.2bn", "five thousand dollars, fifty million euros and three point two billion pounds"),
        ("Mt. Fuji, 5th Ave., Apt. 4, Fig. 3, approx. 5 kg", "mount fuji, fifth avenue, apartment four, figure three, "
         "approximately five kilograms"),
        ("A 4K TV plays MP3 3x faster", "a four k tv plays mp three three x faster"),
        ("3² is 9, 5*3 is 15, ±2", "three squared is nine, five times three is fifteen, plus or minus two"),
        ("Add 3½ cups and ¾ cup", "add three and one half cups and three quarters cup"),
        ("10⁸ is 10^8, not 108; 10⁻³", "ten to the power of eight is ten to the power of eight, not one hundred "
         "eight; ten to the power of minus three"),
        ("snake_case | path\\to * note", "snake case path to note"),
        ("  lots   of\tspace \n here ", "lots of space here"),
    ],
)
def test_clean_english(text: str, cleaned: str) -> None:
    assert clean_english(text) == cleaned


def test_to_ascii_folds_accents_and_typography() -> None:
    assert to_ascii("Café naïve Ærø straße “hi” I’m") == 'Cafe naive AEro strasse "hi" I\'m'
    assert to_ascii("zero\u200bwidth") == "zerowidth"
    assert to_ascii("한") == "한"


def test_unreadable_strict_names_characters_of_original_text() -> None:
    with pytest.raises(UnreadableTextError) as caught:
        clean_english("hello 안녕 😀", strict=True)
    assert caught.value.characters == ["안", "녕", "😀"]
    assert caught.value.text == "hello 안녕 😀"


def test_unreadable_lenient_warns_and_drops() -> None:
    with pytest.warns(UnreadableTextWarning, match="😀"):
        assert clean_english("hello 😀 world") == "hello world"


def test_corpus_cleans_to_known_symbols(shared_data) -> None:
    corpus = shared_data / "english_corpus.csv"
    lines = [line.split("\t")[0] for line in corpus.read_text(encoding="utf-8").splitlines()[:3000]]
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        for line in lines:
            cleaned = clean_english(line)
            assert not any(character.isdigit() for character in cleaned)
            english_to_tokens(cleaned)  # strict: raises on anything outside the table
