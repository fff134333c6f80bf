#!/usr/bin/env bash
# Builds the fuzz corpus from the fixtures: every fixture feed, and every XSS vector wrapped in
# RSS, Atom and JSON Feed.
set -euo pipefail
cd "$(dirname "$0")"
mkdir -p corpus/pipeline
cp ../fixtures/feeds/* ../fixtures/fidelity/* ../fixtures/hostile/*.xml ../fixtures/hostile/*.atom corpus/pipeline/
n=0
while IFS= read -r v; do
  n=$((n+1))
  printf '<rss version="2.0"><channel><title>t</title><item><title>x</title><guid>%d</guid><description><![CDATA[%s]]></description></item></channel></rss>' "$n" "$v" > "corpus/pipeline/rss-$n.xml"
  esc=$(printf '%s' "$v" | sed -e 's/&/\&amp;/g' -e 's/</\&lt;/g' -e 's/>/\&gt;/g')
  printf '<feed xmlns="http://www.w3.org/2005/Atom"><title>t</title><id>x</id><entry><id>%d</id><title type="html">%s</title><content type="html">%s</content></entry></feed>' "$n" "$esc" "$esc" > "corpus/pipeline/atom-$n.xml"
  python3 -c 'import json,sys; print(json.dumps({"version":"https://jsonfeed.org/version/1.1","title":"t","items":[{"id":sys.argv[1],"content_html":sys.argv[2],"title":sys.argv[2]}]}))' "$n" "$v" > "corpus/pipeline/json-$n.json"
done < ../fixtures/hostile/vectors.txt
echo "corpus: $(ls corpus/pipeline | wc -l) files"
