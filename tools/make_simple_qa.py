"""Write masteer-datagen/data/simple_qa/simple_qa.jsonl: short questions with checkable
answers (capitals, languages, everyday facts), written for this project to measure
whether steering damages what the embedded model answers well. Deterministic: run it
again to get the same file. Each line: {"id", "category", "question", "answers"}; a
reply is right when it contains one of the answers as whole words (case-insensitive).
"""
import json, pathlib

CAPITALS = [
    ("France", "Paris"), ("Germany", "Berlin"), ("Italy", "Rome"), ("Spain", "Madrid"),
    ("Japan", "Tokyo"), ("China", "Beijing"), ("Russia", "Moscow"), ("Egypt", "Cairo"),
    ("the United Kingdom", "London"), ("Canada", "Ottawa"), ("Greece", "Athens"),
    ("Portugal", "Lisbon"), ("Ireland", "Dublin"), ("Austria", "Vienna"),
    ("Norway", "Oslo"), ("Sweden", "Stockholm"), ("Finland", "Helsinki"),
    ("Denmark", "Copenhagen"), ("Poland", "Warsaw"), ("Hungary", "Budapest"),
    ("the Czech Republic", "Prague"), ("Belgium", "Brussels"), ("the Netherlands", "Amsterdam"),
    ("Thailand", "Bangkok"), ("South Korea", "Seoul"), ("India", "New Delhi"),
    ("Kenya", "Nairobi"), ("Argentina", "Buenos Aires"), ("Peru", "Lima"),
    ("Chile", "Santiago"), ("Mexico", "Mexico City"), ("Cuba", "Havana"),
    ("Turkey", "Ankara"), ("Iran", "Tehran"), ("Iraq", "Baghdad"),
    ("Saudi Arabia", "Riyadh"), ("Qatar", "Doha"), ("Lebanon", "Beirut"),
    ("Syria", "Damascus"), ("Afghanistan", "Kabul"), ("Pakistan", "Islamabad"),
    ("Bangladesh", "Dhaka"), ("Nepal", "Kathmandu"), ("Vietnam", "Hanoi"),
    ("the Philippines", "Manila"), ("Indonesia", "Jakarta"), ("Malaysia", "Kuala Lumpur"),
    ("Australia", "Canberra"), ("New Zealand", "Wellington"), ("Ukraine", "Kyiv"),
    ("Romania", "Bucharest"), ("Bulgaria", "Sofia"), ("Serbia", "Belgrade"),
    ("Croatia", "Zagreb"), ("Iceland", "Reykjavik"), ("Switzerland", "Bern"),
    ("Colombia", "Bogota"), ("Venezuela", "Caracas"), ("Ethiopia", "Addis Ababa"),
    ("Nigeria", "Abuja"), ("Ghana", "Accra"), ("Morocco", "Rabat"),
    ("the United States", "Washington"), ("Brazil", "Brasilia"), ("Scotland", "Edinburgh"),
    ("Wales", "Cardiff"), ("Estonia", "Tallinn"), ("Latvia", "Riga"),
    ("Lithuania", "Vilnius"), ("Slovakia", "Bratislava"),
]

NUMBER_WORDS = ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight",
                "nine", "ten", "eleven", "twelve"]

def num(n):
    out = [str(n)]
    if 0 <= n < len(NUMBER_WORDS):
        out.append(NUMBER_WORDS[n])
    return out

FACTS = [
    ("How many days are there in a week?", num(7)),
    ("How many months are there in a year?", num(12)),
    ("How many hours are there in a day?", num(24)),
    ("How many minutes are there in an hour?", num(60)),
    ("How many seconds are there in a minute?", num(60)),
    ("How many legs does a spider have?", num(8)),
    ("How many legs does an insect have?", num(6)),
    ("How many legs does a dog have?", num(4)),
    ("How many wheels does a bicycle have?", num(2)),
    ("How many wheels does a tricycle have?", num(3)),
    ("How many sides does a triangle have?", num(3)),
    ("How many sides does a square have?", num(4)),
    ("How many sides does a hexagon have?", num(6)),
    ("How many sides does an octagon have?", num(8)),
    ("How many continents are there on Earth?", num(7)),
    ("How many players are on a soccer team on the field?", num(11)),
    ("How many strings does a standard violin have?", num(4)),
    ("How many days are there in a leap year?", num(366)),
    ("How many years are in a century?", ["100", "hundred"]),
    ("How many cents are in a dollar?", ["100", "hundred"]),
    ("How many centimeters are in a meter?", ["100", "hundred"]),
    ("How many grams are in a kilogram?", ["1000", "1,000", "thousand"]),
    ("How many letters are in the English alphabet?", num(26)),
    ("How many planets are in our solar system?", num(8)),
    ("How many hearts does an octopus have?", num(3)),
    ("What is the largest planet in our solar system?", ["Jupiter"]),
    ("Which planet is known as the Red Planet?", ["Mars"]),
    ("Which planet is closest to the Sun?", ["Mercury"]),
    ("What star is at the center of our solar system?", ["Sun"]),
    ("What is the natural satellite of the Earth called?", ["Moon"]),
    ("What is the largest ocean on Earth?", ["Pacific"]),
    ("What is the longest river in Africa?", ["Nile"]),
    ("What is the tallest mountain in the world?", ["Everest"]),
    ("What is the largest desert in Africa?", ["Sahara"]),
    ("What is the chemical symbol for water?", ["H2O"]),
    ("What gas do plants absorb from the air?", ["carbon dioxide", "CO2"]),
    ("What gas do humans need to breathe to live?", ["oxygen"]),
    ("At what temperature in Celsius does water freeze?", ["0", "zero"]),
    ("At what temperature in Celsius does water boil?", ["100", "hundred"]),
    ("What color is the sky on a clear day?", ["blue"]),
    ("What color is grass?", ["green"]),
    ("What color is a ripe banana?", ["yellow"]),
    ("What color is snow?", ["white"]),
    ("What color do you get by mixing blue and yellow?", ["green"]),
    ("What color do you get by mixing red and white?", ["pink"]),
    ("What is the opposite of hot?", ["cold"]),
    ("What is the opposite of up?", ["down"]),
    ("What is the opposite of day?", ["night"]),
    ("What is the opposite of big?", ["small", "little"]),
    ("What is the opposite of fast?", ["slow"]),
    ("What is the opposite of happy?", ["sad", "unhappy"]),
    ("What animal is known as the king of the jungle?", ["lion"]),
    ("What is the largest mammal on Earth?", ["blue whale", "whale"]),
    ("What is the fastest land animal?", ["cheetah"]),
    ("What animal produces milk that people commonly drink?", ["cow", "cows"]),
    ("What do bees make?", ["honey"]),
    ("What is frozen water called?", ["ice"]),
    ("What is the baby of a cat called?", ["kitten"]),
    ("What is the baby of a dog called?", ["puppy"]),
    ("Which organ pumps blood through the human body?", ["heart"]),
    ("Which organ do humans use to breathe?", ["lungs", "lung"]),
    ("How many bones are in the adult human body?", ["206"]),
    ("What is the hardest natural substance?", ["diamond", "diamonds"]),
    ("What is the main language spoken in Brazil?", ["Portuguese"]),
    ("What is the main language spoken in Mexico?", ["Spanish"]),
    ("What is the currency of Japan?", ["yen"]),
    ("What is the currency of the United Kingdom?", ["pound", "pounds", "sterling"]),
    ("Who wrote Romeo and Juliet?", ["Shakespeare"]),
    ("Who painted the Mona Lisa?", ["Leonardo", "da Vinci"]),
    ("Who developed the theory of relativity?", ["Einstein"]),
    ("Who was the first person to walk on the Moon?", ["Armstrong"]),
    ("What is the freezing point of water in Fahrenheit?", ["32"]),
    ("What is the first month of the year?", ["January"]),
    ("What is the last month of the year?", ["December"]),
    ("Which day comes after Monday?", ["Tuesday"]),
    ("Which day comes before Sunday?", ["Saturday"]),
    ("What season comes after winter?", ["spring"]),
    ("What season comes after summer?", ["autumn", "fall"]),
    ("What do caterpillars turn into?", ["butterfly", "butterflies", "moth", "moths"]),
    ("What is the capital letter after A in the alphabet?", ["B"]),
]

LANGUAGES = [
    ("France", ["French"]), ("Germany", ["German"]), ("Italy", ["Italian"]),
    ("Spain", ["Spanish"]), ("Japan", ["Japanese"]), ("China", ["Chinese", "Mandarin"]),
    ("Russia", ["Russian"]), ("Greece", ["Greek"]), ("Portugal", ["Portuguese"]),
    ("Poland", ["Polish"]), ("Sweden", ["Swedish"]), ("Norway", ["Norwegian"]),
    ("Finland", ["Finnish"]), ("Denmark", ["Danish"]), ("the Netherlands", ["Dutch"]),
    ("Turkey", ["Turkish"]), ("Egypt", ["Arabic"]), ("Saudi Arabia", ["Arabic"]),
    ("Iran", ["Persian", "Farsi"]), ("Thailand", ["Thai"]), ("Vietnam", ["Vietnamese"]),
    ("South Korea", ["Korean"]), ("Hungary", ["Hungarian"]), ("Romania", ["Romanian"]),
    ("Ukraine", ["Ukrainian"]), ("Argentina", ["Spanish"]), ("Colombia", ["Spanish"]),
    ("Chile", ["Spanish"]), ("Austria", ["German"]), ("Australia", ["English"]),
    ("the United States", ["English"]), ("England", ["English"]), ("Ireland", ["English", "Irish"]),
    ("Israel", ["Hebrew"]), ("Czech Republic", ["Czech"]), ("Iceland", ["Icelandic"]),
    ("Indonesia", ["Indonesian"]), ("Cuba", ["Spanish"]), ("Peru", ["Spanish"]),
    ("Bulgaria", ["Bulgarian"]),
]

def main():
    rows = []
    for c, cap in CAPITALS:
        rows.append(("capital", f"What is the capital of {c}?", [cap]))
    for q, a in FACTS:
        rows.append(("fact", q, a))
    for c, a in LANGUAGES:
        rows.append(("language", f"What language is mainly spoken in {c}?", a))
    out = pathlib.Path(__file__).resolve().parent.parent / "masteer-datagen/data/simple_qa/simple_qa.jsonl"
    with open(out, "w") as f:
        for i, (cat, q, a) in enumerate(rows):
            f.write(json.dumps({"id": f"simple_qa/{i}", "category": cat, "question": q, "answers": a}) + "\n")
    print(len(rows), "questions ->", out)

if __name__ == "__main__":
    main()
